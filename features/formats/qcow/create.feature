@format:qcow @op:create @spec:qcow
Feature: creating qcow (version 1) images
  A new qcow image is its 48-byte header, the backing file name, and a zeroed L1
  table; without a backing file clusters are 4 KiB. QEMU 7.2 creates it the same way
  every time, so an implementation's file must be byte-identical to qemu-img's.

  @spec:qcow.size
  Scenario Outline: a <size> image has the size and 4 KiB clusters
    When a <size> qcow image is created
    Then creation succeeds
    And the image info reports a virtual size of <size>
    And the image info reports "cluster-size" 4096
    And the oracle reports the same info
    And the oracle creates a byte-identical <size> qcow image with ""

    Examples:
      | size      |
      | 512 bytes |
      | 1 MiB     |
      | 64 MiB    |
      | 3 GiB     |

  @spec:qcow.size
  Scenario: a size that is not a multiple of 512 is rounded up
    When a 1000 bytes qcow image is created
    Then creation succeeds
    And the image info reports a virtual size of 1024 bytes
    And the oracle reports the same info

  @spec:qcow.size
  Scenario: a qcow image cannot be empty
    When a 0 qcow image is created
    Then creation fails naming "size"

  @spec:qcow.preallocation
  Scenario Outline: preallocation=<mode> preallocates the file, not guest clusters
    When a 64 MiB qcow image is created with "preallocation=<mode>"
    Then creation succeeds
    And the map shows 64 MiB at offset 0 as unallocated
    And the oracle creates a byte-identical 64 MiB qcow image with "preallocation=<mode>"

    Examples:
      | mode   |
      | off    |
      | falloc |
      | full   |

  @spec:qcow.preallocation
  Scenario: preallocation=metadata is refused for qcow
    When a 64 MiB qcow image is created with "preallocation=metadata"
    Then creation fails naming "preallocation"

  @spec:qcow.nocow
  Scenario: nocow=on is accepted (it only matters on btrfs)
    When a 64 MiB qcow image is created with "nocow=on"
    Then creation succeeds
    And the oracle creates a byte-identical 64 MiB qcow image with "nocow=on"

  @spec:qcow.extent_size_hint
  Scenario Outline: extent_size_hint=<value> is <fate>
    When a 64 MiB qcow image is created with "extent_size_hint=<value>"
    Then creation <fate>

    Examples:
      | value      | fate                            |
      | 0          | succeeds                        |
      | 4294967295 | succeeds                        |
      | 4G         | fails naming "extent_size_hint" |
