@format:qcow2 @spec:qcow2
Feature: guest I/O on qcow2 images
  Whatever the cluster layout, what the guest writes reads back, zeroed and discarded
  ranges read as zeroes, and nothing goes past the virtual size.

  @op:write @op:read
  Scenario Outline: <length> of pattern <pattern> at offset <offset> reads back
    Given a 64 MiB qcow2 image
    When <length> of pattern <pattern> is written at offset <offset>
    Then the <length> at offset <offset> reads back as pattern <pattern>
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

    Examples:
      | length     | pattern | offset     |
      | 512 bytes  | 0x01    | 0          |
      | 1000 bytes | 0xa5    | 1000 bytes |
      | 64 KiB     | 0x5a    | 64 KiB     |
      | 100 KiB    | 0x77    | 60 KiB     |
      | 1 MiB      | 0x5a    | 8 MiB      |
      | 64 KiB     | 0xff    | 65472 KiB  |
      | 64 MiB     | 0x3c    | 0          |

  @op:write @op:read
  Scenario: a partial overwrite keeps the rest of the cluster
    Given a 64 MiB qcow2 image
    And 64 KiB of pattern 0x11 written at offset 0
    When 4 KiB of pattern 0x22 is written at offset 8 KiB
    Then the 8 KiB at offset 0 reads back as pattern 0x11
    And the 4 KiB at offset 8 KiB reads back as pattern 0x22
    And the 52 KiB at offset 12 KiB reads back as pattern 0x11
    And the oracle reads the same guest bytes

  @op:write
  Scenario Outline: a range that is <how> reads back as zeroes
    Given a 64 MiB qcow2 image
    And 2 MiB of pattern 0x5a written at offset 0
    When 1 MiB at offset 512 KiB is <how>
    Then the 1 MiB at offset 512 KiB reads back as zeroes
    And the 512 KiB at offset 0 reads back as pattern 0x5a
    And the 512 KiB at offset 1536 KiB reads back as pattern 0x5a
    And the map shows 1 MiB at offset 512 KiB as zeroes
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

    Examples:
      | how               |
      | zeroed            |
      | zeroed with unmap |
      | discarded         |

  @op:write
  Scenario Outline: a write of <length> at offset <offset> past the end is refused
    Given a 64 MiB qcow2 image
    When a write of <length> of pattern 0x5a at offset <offset> is attempted
    Then the write fails
    And the whole disk reads back as zeroes
    And the check reports no corruption

    Examples:
      | length | offset |
      | 64 KiB | 64 MiB |
      | 1 MiB  | 65024 KiB |

  @op:map
  Scenario: the map tells written data from unallocated space
    Given a 64 MiB qcow2 image
    When 1 MiB of pattern 0x5a is written at offset 8 MiB
    Then the map covers the whole disk without gaps or overlaps
    And the map shows 1 MiB at offset 8 MiB as data
    And the map shows 8 MiB at offset 0 as unallocated
    And the map shows 55 MiB at offset 9 MiB as unallocated
    And the check counts 16 allocated clusters
    And the oracle reports the same map

  @op:compare
  Scenario: a qcow2 image and a raw image with the same bytes compare identical
    Given a 64 MiB qcow2 image "q"
    And 1 MiB of pattern 0x5a written to "q" at offset 8 MiB
    And a 64 MiB raw image "r"
    And 1 MiB of pattern 0x5a written to "r" at offset 8 MiB
    When images "q" and "r" are compared
    Then they are reported identical
    When 512 bytes of pattern 0x01 is written to "q" at offset 32 MiB
    And images "q" and "r" are compared
    Then they are reported different
