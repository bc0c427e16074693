@format:parallels @op:create
Feature: creating Parallels images
  The manual lists parallels among the read-only formats; QEMU 7.2 creates and writes
  it, and so does the reference (the last two scenarios state the manual; the expectations
  record both implementations' divergence). A parallels image is a 64-byte header, a BAT with one entry per cluster, and the
  clusters. cluster_size is rounded up to a multiple of 512 bytes.

  @spec:parallels @spec:parallels.size
  Scenario Outline: a <size> parallels image has that virtual size
    When a <size> parallels image is created
    Then creation succeeds
    And the image info reports a virtual size of <size>
    And the whole disk reads back as zeroes
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reports the same map

    Examples:
      | size  |
      | 0     |
      | 1 MiB |
      | 5 MiB |
      | 1 GiB |

  @spec:parallels.cluster_size
  Scenario Outline: cluster_size=<value> is accepted
    When a 64 MiB parallels image is created with "cluster_size=<value>"
    Then creation succeeds
    And the check reports no corruption
    And the whole disk reads back as zeroes
    And the oracle reads the same guest bytes

    Examples:
      | value |
      | 256   |
      | 512   |
      | 1000  |
      | 3000  |
      | 4k    |
      | 64k   |
      | 1M    |
      | 8M    |

  @spec:parallels.cluster_size
  Scenario Outline: cluster_size=<value> is refused
    When a 64 MiB parallels image is created with "cluster_size=<value>"
    Then creation fails naming "<name>"
    And no image file is left behind

    Examples:
      | value | name         |
      | 0     | cluster_size |
      | 4G    | cluster_size |
      | abc   | cluster_size |

  @spec:parallels.cluster_size @spec:parallels.size
  Scenario: a disk of 2^32 clusters is refused
    When a 2 TiB parallels image is created with "cluster_size=512"
    Then creation fails naming "size"

  @spec:parallels.size
  Scenario Outline: a size of <size> bytes is rounded up to <virtual>
    When a <size> parallels image is created
    Then creation succeeds
    And the image info reports a virtual size of <virtual>
    And the oracle reports the same info

    Examples:
      | size | virtual |
      | 1    | 512     |
      | 1000 | 1024    |

  Scenario Outline: the file option <option> is accepted
    When a 16 MiB parallels image is created with "<option>"
    Then creation succeeds
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reports the same info

    @spec:parallels.nocow
    Examples: nocow (a btrfs attribute; no effect here)
      | option    |
      | nocow=on  |
      | nocow=off |

    @spec:parallels.extent_size_hint
    Examples: extent_size_hint (an XFS hint; no effect here)
      | option                |
      | extent_size_hint=0    |
      | extent_size_hint=256k |

  @spec:parallels.extent_size_hint
  Scenario: an extent size hint of 4 GiB or more is refused
    When a 16 MiB parallels image is created with "extent_size_hint=4G"
    Then creation fails naming "extent_size_hint"
    And no image file is left behind

  @spec:parallels.preallocation
  Scenario Outline: preallocation=<value> is accepted
    When a 16 MiB parallels image is created with "preallocation=<value>"
    Then creation succeeds
    And the whole disk reads back as zeroes

    Examples:
      | value  |
      | off    |
      | falloc |
      | full   |

  @spec:parallels
  Scenario: parallels is a read-only format (the manual): creating an image is refused
    When a 16 MiB parallels image is created
    Then creation fails naming "parallels"

  @spec:parallels @op:write
  Scenario: parallels is a read-only format (the manual): a guest write is refused
    Given a parallels image that qemu-img made and wrote
    When a write of 4 KiB of pattern 0x33 at offset 0 is attempted
    Then the write fails
