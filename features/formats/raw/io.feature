@format:raw @spec:raw
Feature: guest I/O on raw images
  Every guest byte of a raw image is the byte at the same offset of the file, so
  what is written reads back, zeroed and discarded ranges read as zeroes, and no
  access may go past the virtual size.

  @op:write @op:read
  Scenario Outline: <length> of pattern <pattern> at offset <offset> reads back
    Given a 64 MiB raw image
    When <length> of pattern <pattern> is written at offset <offset>
    Then the <length> at offset <offset> reads back as pattern <pattern>
    And the oracle reads the same guest bytes

    Examples:
      | length     | pattern | offset     |
      | 512 bytes  | 0x01    | 0          |
      | 1 MiB      | 0x5a    | 8 MiB      |
      | 1000 bytes | 0xa5    | 1000 bytes |
      | 64 KiB     | 0xff    | 63 MiB     |
      | 64 MiB     | 0x3c    | 0          |

  @op:write @op:read
  Scenario: writing twice keeps the later data
    Given a 64 MiB raw image
    And 1 MiB of pattern 0x11 written at offset 0
    When 64 KiB of pattern 0x22 is written at offset 512 KiB
    Then the 512 KiB at offset 0 reads back as pattern 0x11
    And the 64 KiB at offset 512 KiB reads back as pattern 0x22
    And the 448 KiB at offset 576 KiB reads back as pattern 0x11

  @op:write
  Scenario Outline: zeroing <how> reads back as zeroes
    Given a 64 MiB raw image
    And 2 MiB of pattern 0x5a written at offset 0
    When 1 MiB at offset 512 KiB is <how>
    Then the 1 MiB at offset 512 KiB reads back as zeroes
    And the 512 KiB at offset 0 reads back as pattern 0x5a
    And the 512 KiB at offset 1536 KiB reads back as pattern 0x5a
    And the oracle reads the same guest bytes

    Examples:
      | how              |
      | zeroed           |
      | zeroed with unmap |
      | discarded        |

  @op:write
  Scenario Outline: a write of <length> at offset <offset> past the end of the disk is refused
    Given a 64 MiB raw image
    When a write of <length> of pattern 0x5a at offset <offset> is attempted
    Then the write fails
    And the whole disk reads back as zeroes

    Examples:
      | length | offset |
      | 64 KiB | 64 MiB |
      | 1 MiB  | 65024 KiB |

  @op:map
  Scenario: the map describes the whole disk and the written data
    Given a 64 MiB raw image
    When 1 MiB of pattern 0x5a is written at offset 8 MiB
    Then the map covers the whole disk without gaps or overlaps
    And the map shows 1 MiB at offset 8 MiB as data
    And the map shows 1 MiB at offset 32 MiB as zeroes

  @op:compare
  Scenario: a copy compares identical until one of them changes
    Given a 64 MiB raw image "a"
    And 1 MiB of pattern 0x5a written to "a" at offset 8 MiB
    And a 64 MiB raw image "b"
    And 1 MiB of pattern 0x5a written to "b" at offset 8 MiB
    When images "a" and "b" are compared
    Then they are reported identical
    When 512 bytes of pattern 0x01 is written to "b" at offset 0
    And images "a" and "b" are compared
    Then they are reported different
