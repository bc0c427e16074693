@format:qed @op:create @spec:qed
Feature: creating qed images
  A new qed image is one header cluster and an empty L1 table of table_size clusters;
  QEMU 7.2 lays it out the same way every time, so an implementation's file must be
  byte-identical to qemu-img's for the same options.

  @spec:qed.cluster_size
  Scenario Outline: cluster_size=<value> makes clusters of <bytes> bytes
    When a 64 MiB qed image is created with "cluster_size=<value>"
    Then creation succeeds
    And the image info reports "cluster-size" <bytes>
    And the image info reports a virtual size of 64 MiB
    And the check reports no corruption
    And the oracle reports the same info
    And the oracle creates a byte-identical 64 MiB qed image with "cluster_size=<value>"

    Examples:
      | value | bytes |
      | 4096  | 4096  |
      | 4k    | 4096  |
      | 16k   | 16384 |
      | 64k   | 65536 |
      | 65536 | 65536 |

  @spec:qed.cluster_size
  Scenario Outline: cluster_size=<value> is refused (the manual allows powers of two from 4K to 64K)
    When a 64 MiB qed image is created with "cluster_size=<value>"
    Then creation fails naming "cluster_size"

    Examples:
      | value |
      | 0     |
      | 2048  |
      | 5000  |
      | 128k  |
      | 1M    |
      | abc   |

  @spec:qed.table_size
  Scenario Outline: table_size=<value> makes L1 tables of <value> clusters
    When a 64 MiB qed image is created with "table_size=<value>"
    Then creation succeeds
    And the image file is at least <file> long
    And the check reports no corruption
    And the oracle reports the same info
    And the oracle creates a byte-identical 64 MiB qed image with "table_size=<value>"

    Examples:
      | value | file     |
      | 2     | 192 KiB  |
      | 4     | 320 KiB  |
      | 8     | 576 KiB  |
      | 16    | 1088 KiB |

  @spec:qed.table_size
  Scenario: table_size=1, which the manual allows, makes an image that opens
    When a 64 MiB qed image is created with "table_size=1,cluster_size=4k"
    Then creation succeeds
    And the image info reports a virtual size of 64 MiB
    And the image info reports "cluster-size" 4096

  @spec:qed.table_size
  Scenario Outline: table_size=<value> is refused
    When a 64 MiB qed image is created with "table_size=<value>"
    Then creation fails naming "table_size"

    Examples:
      | value |
      | 0     |
      | 3     |
      | 32    |
      | 1k    |

  @spec:qed.size
  Scenario Outline: a <size> image with "<options>" is <fate>: at most cluster_size * (table_size * cluster_size / 8)^2 bytes
    When a <size> qed image is created with "<options>"
    Then creation <fate>

    Examples:
      | size     | options                     | fate                   |
      | 1 GiB    | cluster_size=4k,table_size=1 | succeeds               |
      | 2 GiB    | cluster_size=4k,table_size=1 | fails naming "size"    |
      | 0        |                             | succeeds               |

  @spec:qed.size
  Scenario: a size that is not a multiple of 512 is rounded up
    When a 1000 bytes qed image is created
    Then creation succeeds
    And the image info reports a virtual size of 1024 bytes
    And the oracle reports the same info

  @spec:qed.preallocation
  Scenario Outline: preallocation=<mode> preallocates the file, not guest clusters
    When a 64 MiB qed image is created with "preallocation=<mode>"
    Then creation succeeds
    And the map shows 64 MiB at offset 0 as unallocated
    And the oracle creates a byte-identical 64 MiB qed image with "preallocation=<mode>"

    Examples:
      | mode   |
      | off    |
      | falloc |
      | full   |

  @spec:qed.preallocation
  Scenario: preallocation=metadata is refused for qed
    When a 64 MiB qed image is created with "preallocation=metadata"
    Then creation fails naming "preallocation"

  @spec:qed.nocow
  Scenario: nocow=on is accepted (it only matters on btrfs)
    When a 64 MiB qed image is created with "nocow=on"
    Then creation succeeds
    And the oracle creates a byte-identical 64 MiB qed image with "nocow=on"

  @spec:qed.extent_size_hint
  Scenario Outline: extent_size_hint=<value> is <fate>
    When a 64 MiB qed image is created with "extent_size_hint=<value>"
    Then creation <fate>

    Examples:
      | value      | fate                              |
      | 0          | succeeds                          |
      | 4294967295 | succeeds                          |
      | 4G         | fails naming "extent_size_hint"   |
