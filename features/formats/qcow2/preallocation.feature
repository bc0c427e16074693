@format:qcow2 @op:create @spec:qcow2.preallocation
Feature: qcow2 preallocation
  off allocates nothing; metadata preallocates the tables, so the image starts larger
  but grows faster; falloc and full are like raw's modes and set up the metadata too.

  Scenario: preallocation=off allocates no cluster
    When a 64 MiB qcow2 image is created with "preallocation=off"
    Then creation succeeds
    And the map shows 64 MiB at offset 0 as unallocated
    And the image file occupies less than 1 MiB on the host
    And the whole disk reads back as zeroes
    And the oracle finds the image consistent

  Scenario: preallocation=metadata allocates every cluster, which still reads as zeroes
    When a 64 MiB qcow2 image is created with "preallocation=metadata"
    Then creation succeeds
    And the map shows 64 MiB at offset 0 as allocated
    And the map shows 64 MiB at offset 0 as zeroes
    And the image file is at least 64 MiB long
    And the image file occupies less than 8 MiB on the host
    And the whole disk reads back as zeroes
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reports the same map

  Scenario Outline: preallocation=<mode> allocates and reserves the whole disk
    When a 64 MiB qcow2 image is created with "preallocation=<mode>"
    Then creation succeeds
    And the map shows 64 MiB at offset 0 as allocated
    And the image file occupies at least 64 MiB on the host
    And the whole disk reads back as zeroes
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

    Examples:
      | mode   |
      | falloc |
      | full   |

  Scenario Outline: data written to a preallocation=<mode> image reads back
    Given a 64 MiB qcow2 image created with "preallocation=<mode>"
    When 1 MiB of pattern 0x5a is written at offset 8 MiB
    Then the 1 MiB at offset 8 MiB reads back as pattern 0x5a
    And the map shows 1 MiB at offset 8 MiB as data
    And the check reports no corruption
    And the oracle finds the image consistent

    Examples:
      | mode     |
      | off      |
      | metadata |
      | falloc   |
      | full     |

  Scenario Outline: preallocation=<mode> is not a mode
    When a 64 MiB qcow2 image is created with "preallocation=<mode>"
    Then creation fails naming "preallocation"
    And no image file is left behind

    Examples:
      | mode   |
      | bogus  |
      | on     |
      | sparse |

  # qemu 7.2: preallocating under a backing file needs extended L2 entries
  @spec:qcow2.extended_l2 @qemu-since:6.0
  Scenario: preallocation with a backing file needs extended_l2
    Given a 64 MiB qcow2 image "base"
    When a qcow2 image "top" is created backed by "base" with "preallocation=metadata"
    Then creation fails naming "preallocation" and "extended_l2"
    And no image file is left behind

  @spec:qcow2.extended_l2 @qemu-since:6.0
  Scenario: preallocation with a backing file works with extended_l2=on
    Given a 64 MiB qcow2 image "base"
    And 1 MiB of pattern 0x5a written to "base" at offset 0
    When a qcow2 image "top" is created backed by "base" with "preallocation=metadata,extended_l2=on"
    Then creation succeeds
    And the 1 MiB of "top" at offset 0 reads back as pattern 0x5a
    And the oracle finds "top" consistent
