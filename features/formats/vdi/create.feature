@format:vdi @op:create
Feature: creating VirtualBox (vdi) images
  A vdi image is a header, a block map with one entry per 1 MiB block of the disk,
  and the blocks. static=on gives every block its place in the file at creation.

  @spec:vdi @spec:vdi.size
  Scenario Outline: a <size> vdi image has that virtual size
    When a <size> vdi image is created
    Then creation succeeds
    And the image info reports a virtual size of <size>
    And the image info reports "cluster-size" 1048576
    And the check reports no corruption
    And the oracle reports the same info
    And the oracle finds the image consistent

    Examples:
      | size   |
      | 0      |
      | 1 MiB  |
      | 5 MiB  |
      | 1 GiB  |

  @spec:vdi.size
  Scenario Outline: a size of <size> bytes is rounded up to <virtual>
    When a <size> vdi image is created
    Then creation succeeds
    And the image info reports a virtual size of <virtual>
    And the oracle reports the same info

    Examples:
      | size | virtual |
      | 1    | 512     |
      | 1000 | 1024    |

  @spec:vdi.size
  Scenario: a size past 0x1fffff8000000 bytes (the block map's limit) is refused
    When a 562949819203585 vdi image is created
    Then creation fails naming "size"
    And no image file is left behind

  Scenario Outline: the file option <option> is accepted
    When a 16 MiB vdi image is created with "<option>"
    Then creation succeeds
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reports the same info

    @spec:vdi.nocow
    Examples: nocow (a btrfs attribute; no effect here)
      | option    |
      | nocow=on  |
      | nocow=off |

    @spec:vdi.extent_size_hint
    Examples: extent_size_hint (an XFS hint; no effect here)
      | option                |
      | extent_size_hint=0    |
      | extent_size_hint=256k |

  @spec:vdi.extent_size_hint
  Scenario: an extent size hint of 4 GiB or more is refused
    When a 16 MiB vdi image is created with "extent_size_hint=4G"
    Then creation fails naming "extent_size_hint"
    And no image file is left behind

  @spec:vdi.static
  Scenario Outline: static=<value> is accepted
    When a 16 MiB vdi image is created with "static=<value>"
    Then creation succeeds
    And the whole disk reads back as zeroes
    And the oracle reports the same info
    And the oracle reports the same map
    And the oracle finds the image consistent

    Examples:
      | value |
      | on    |
      | off   |
      | yes   |
      | no    |

  @spec:vdi.static
  Scenario: a static image holds the whole disk in its file
    When a 16 MiB vdi image is created with "static=on"
    Then creation succeeds
    And the image file is at least 16 MiB long

  @spec:vdi.static
  Scenario Outline: static=<value> is refused
    When a 16 MiB vdi image is created with "static=<value>"
    Then creation fails naming "static"
    And no image file is left behind

    Examples:
      | value |
      | abc   |
      | 2     |

  @spec:vdi.preallocation
  Scenario Outline: preallocation=<value> is accepted and leaves a sparse image
    When a 16 MiB vdi image is created with "preallocation=<value>"
    Then creation succeeds
    And the whole disk reads back as zeroes
    And the oracle finds the image consistent

    Examples:
      | value  |
      | off    |
      | falloc |
      | full   |

  @spec:vdi
  Scenario Outline: an unknown option <option> is refused
    When a 16 MiB vdi image is created with "<option>"
    Then creation fails naming "<name>"

    Examples:
      | option             | name          |
      | cluster_size=64k   | cluster_size  |
      | preallocation=meta | meta          |
