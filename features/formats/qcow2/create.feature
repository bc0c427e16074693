@format:qcow2 @op:create
Feature: creating qcow2 images
  qcow2 is QEMU's most versatile format: small images on file systems without holes,
  zlib compression and snapshots. A new image has no allocated data and reads as zeroes.

  @spec:qcow2
  Scenario: a new qcow2 image has the documented defaults
    When a 64 MiB qcow2 image is created
    Then creation succeeds
    And the image info reports "format" "qcow2"
    And the image info reports a virtual size of 64 MiB
    And the image info reports "cluster-size" 65536
    And the image info reports format-specific "compat" "1.1"
    And the image info reports format-specific "lazy-refcounts" false
    And the image info reports format-specific "refcount-bits" 16
    And the whole disk reads back as zeroes
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reports the same info

  @spec:qcow2
  Scenario: a new qcow2 image is small although its disk is large
    When a 1 GiB qcow2 image is created
    Then creation succeeds
    And the image file occupies less than 1 MiB on the host
    And the map shows 1 GiB at offset 0 as unallocated
    And the oracle finds the image consistent

  @spec:qcow2.size
  Scenario Outline: a qcow2 image of <size> has exactly that virtual size
    When a <size> qcow2 image is created
    Then creation succeeds
    And the image info reports a virtual size of <size>
    And the check reports no corruption
    And the oracle reports the same info

    Examples:
      | size      |
      | 0 bytes   |
      | 512 bytes |
      | 1 GiB     |
      | 2 TiB     |

  @spec:qcow2.size
  Scenario: the size option gives the virtual size
    When a qcow2 image is created with "size=2M" and no size
    Then creation succeeds
    And the image info reports a virtual size of 2 MiB

  @spec:qcow2.size
  Scenario: a qcow2 image needs a size
    When a qcow2 image is created with "" and no size
    Then creation fails naming "size"
    And no image file is left behind

  @spec:qcow2.size
  Scenario: the size is given only once
    When a 64 MiB qcow2 image is created with "size=1M"
    Then creation fails naming "size"
    And no image file is left behind

  @spec:qcow2
  Scenario Outline: the option "<option>" does not exist for qcow2
    When a 64 MiB qcow2 image is created with "<option>=<value>"
    Then creation fails naming "<option>"
    And no image file is left behind

    Examples:
      | option     | value |
      | bogus      | 1     |
      | table_size | 4     |
      | subformat  | fixed |

  @spec:qcow2.nocow @qemu-since:2.1
  Scenario Outline: nocow=<value> is accepted (it only has an effect on btrfs)
    When a 64 MiB qcow2 image is created with "nocow=<value>"
    Then creation succeeds
    And the check reports no corruption
    And the oracle finds the image consistent

    Examples:
      | value |
      | on    |
      | off   |

  @spec:qcow2.nocow
  Scenario: nocow takes on or off
    When a 64 MiB qcow2 image is created with "nocow=maybe"
    Then creation fails naming "nocow"
    And no image file is left behind

  @spec:qcow2.extent_size_hint @qemu-since:5.1
  Scenario: an extent size hint is accepted
    When a 64 MiB qcow2 image is created with "extent_size_hint=1M"
    Then creation succeeds
    And the oracle finds the image consistent

  @spec:qcow2.extent_size_hint
  Scenario: an extent size hint must be a size
    When a 64 MiB qcow2 image is created with "extent_size_hint=big"
    Then creation fails naming "extent_size_hint"
    And no image file is left behind
