@format:vpc @spec:vpc
Feature: guest I/O on vpc images
  A dynamic image allocates a 2 MiB block (behind its sector bitmap) on the first write to
  it, where the footer was, and writes the footer again after it; unwritten blocks read as
  zeroes. A fixed image is written in place. vpc has neither zero writes nor discard:
  zeroes are written as data and a discard keeps the data.

  @op:write @op:read @spec:vpc.subformat
  Scenario Outline: <length> of pattern <pattern> at <offset> in a <subformat> image reads back
    Given a 10514432 bytes vpc image created with "subformat=<subformat>"
    When <length> of pattern <pattern> is written at offset <offset>
    Then the <length> at offset <offset> reads back as pattern <pattern>
    And the oracle reads the same guest bytes
    And the oracle reports the same map

    Examples:
      | subformat | length     | pattern | offset     |
      | dynamic   | 1000 bytes | 0xa5    | 1000 bytes |
      | dynamic   | 1 MiB      | 0x5a    | 1536 KiB   |
      | dynamic   | 4 MiB      | 0x77    | 3 MiB      |
      | fixed     | 1000 bytes | 0xa5    | 2047 KiB   |

  @op:write @op:read
  Scenario: a partial write into an allocated block keeps the rest of the block
    Given a 10514432 bytes vpc image
    And 2 MiB of pattern 0x11 written at offset 2 MiB
    When 4 KiB of pattern 0x22 is written at offset 3 MiB
    Then the 1 MiB at offset 2 MiB reads back as pattern 0x11
    And the 4 KiB at offset 3 MiB reads back as pattern 0x22
    And the 1020 KiB at offset 3076 KiB reads back as pattern 0x11
    And the 2 MiB at offset 0 reads back as zeroes
    And the oracle reads the same guest bytes

  @op:write @op:map
  Scenario: a write in one block allocates only that block
    Given a 10514432 bytes vpc image
    When 4 KiB of pattern 0x5a is written at offset 5 MiB
    Then the map shows 2 MiB at offset 4 MiB as data
    And the map shows 4 MiB at offset 0 as zeroes
    And the oracle reports the same map

  @op:write @spec:vpc.subformat
  Scenario Outline: writes crossing blocks in separate opens leave the same <subformat> file as the oracle's
    Given a 10514432 bytes vpc image created with "subformat=<subformat>" and written in separate opens:
      | offset   | length    | pattern |
      | 2047 KiB | 2 KiB     | 0x11    |
      | 6 MiB    | 100 bytes | 0x22    |
      | 0        | 512 bytes | zeroes  |
      | 5 MiB    | 3 MiB     | 0x33    |
    Then the oracle makes the same file outside the random fields
    And the oracle reads the same guest bytes

    Examples:
      | subformat |
      | dynamic   |
      | fixed     |

  @op:write
  Scenario: zeroing writes zeroes (vpc has no zero flag)
    Given a 10514432 bytes vpc image
    And 1 MiB of pattern 0x5a written at offset 0
    When 512 KiB at offset 256 KiB is zeroed
    Then the 512 KiB at offset 256 KiB reads back as zeroes
    And the 256 KiB at offset 0 reads back as pattern 0x5a
    And the oracle reads the same guest bytes

  @op:write
  Scenario: a discard keeps the data (vpc has no discard)
    Given a 10514432 bytes vpc image
    And 1 MiB of pattern 0x5a written at offset 0
    When 1 MiB at offset 0 is discarded
    Then the 1 MiB at offset 0 reads back as pattern 0x5a

  @op:write
  Scenario Outline: a write of <length> at offset <offset> past the end is refused
    Given a 10514432 bytes vpc image
    When a write of <length> of pattern 0x5a at offset <offset> is attempted
    Then the write fails
    And the whole disk reads back as zeroes

    Examples:
      | length    | offset         |
      | 1 MiB     | 10 MiB         |

  @op:convert
  Scenario Outline: a vpc image converts to <target> and back with the same guest bytes
    Given a 10514432 bytes vpc image "source"
    And 1 MiB of pattern 0x5a written to "source" at offset 3 MiB
    And 100 KiB of pattern 0xa5 written to "source" at offset 60 KiB
    When the image is converted to <target>
    Then images "source" and "converted" have the same guest bytes
    And the oracle reads the same guest bytes

    Examples:
      | target |
      | vhdx   |

  @op:convert @spec:vpc.subformat
  Scenario Outline: a raw image converts to vpc with "<options>"
    Given a 10514432 bytes raw image "source"
    And 1 MiB of pattern 0x5a written to "source" at offset 3 MiB
    When the image is converted to vpc with "<options>"
    Then images "source" and "converted" have the same guest bytes
    And the oracle reads the same guest bytes
    And the oracle reports the same map

    Examples:
      | options           |
      | subformat=dynamic |
