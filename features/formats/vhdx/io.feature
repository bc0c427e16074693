@format:vhdx @spec:vhdx
Feature: guest I/O on vhdx images
  A block that is not fully present (ZERO or NOT_PRESENT) reads as zeroes; the first
  write to it places a new block at the end of the file (on a 1 MiB boundary) and changes
  its BAT entry through the log. vhdx has neither zero writes nor discard: zeroes are
  written as data and a discard keeps the data. qemu-img 7.2 reports no block status for
  vhdx, so the map shows the whole disk as data.

  @op:write @op:read @spec:vhdx.block_size @spec:vhdx.subformat
  Scenario Outline: <length> of pattern <pattern> at <offset> with "<options>" reads back
    Given a 20 MiB vhdx image created with "<options>"
    When <length> of pattern <pattern> is written at offset <offset>
    Then the <length> at offset <offset> reads back as pattern <pattern>
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

    Examples:
      | options                              | length     | pattern | offset     |
      | block_size=1M                        | 3 MiB      | 0x5a    | 1536 KiB   |
      | block_size=0                         | 9 MiB      | 0x77    | 7 MiB      |
      | subformat=fixed,block_state_zero=off | 1 MiB      | 0x5a    | 15 MiB     |

  @op:write @spec:vhdx.subformat @spec:vhdx.block_state_zero
  Scenario Outline: writes crossing blocks in separate opens leave the same file as the oracle's with "<options>"
    Given a 5 MiB vhdx image created with "<options>" and written in separate opens:
      | offset   | length    | pattern |
      | 1023 KiB | 2 KiB     | 0x11    |
      | 4 MiB    | 100 bytes | 0x22    |
      | 0        | 512 bytes | zeroes  |
      | 2 MiB    | 3 MiB     | 0x33    |
    Then the oracle makes the same file outside the random fields
    And the oracle reads the same guest bytes
    And the oracle finds the image consistent

    Examples:
      | options                              |
      | block_size=1M                        |
      | subformat=fixed,block_state_zero=off |
      | subformat=fixed                      |

  @op:write @op:read
  Scenario: a partial write into an allocated block keeps the rest of the block
    Given a 20 MiB vhdx image created with "block_size=1M"
    And 1 MiB of pattern 0x11 written at offset 2 MiB
    When 4 KiB of pattern 0x22 is written at offset 2560 KiB
    Then the 512 KiB at offset 2 MiB reads back as pattern 0x11
    And the 4 KiB at offset 2560 KiB reads back as pattern 0x22
    And the 508 KiB at offset 2564 KiB reads back as pattern 0x11
    And the 2 MiB at offset 0 reads back as zeroes
    And the oracle reads the same guest bytes

  @op:write
  Scenario: zeroing writes zeroes and a discard keeps the data
    Given a 20 MiB vhdx image created with "block_size=1M"
    And 2 MiB of pattern 0x5a written at offset 0
    When 512 KiB at offset 256 KiB is zeroed
    And 1 MiB at offset 1 MiB is discarded
    Then the 512 KiB at offset 256 KiB reads back as zeroes
    And the 256 KiB at offset 0 reads back as pattern 0x5a
    And the 1 MiB at offset 1 MiB reads back as pattern 0x5a
    And the oracle reads the same guest bytes

  @op:map
  Scenario: the map shows the whole disk as data
    Given a 20 MiB vhdx image
    Then the map shows 20 MiB at offset 0 as data
    And the oracle reports the same map

  @op:write
  Scenario: a write past the end is refused
    Given a 20 MiB vhdx image
    When a write of 1 MiB of pattern 0x5a at offset 20 MiB is attempted
    Then the write fails
    And the whole disk reads back as zeroes

  @op:convert @spec:vhdx.subformat
  Scenario Outline: a raw image converts to vhdx with "<options>" and back
    Given a 10 MiB raw image "source"
    And 1 MiB of pattern 0x5a written to "source" at offset 3 MiB
    When the image is converted to vhdx with "<options>"
    Then images "source" and "converted" have the same guest bytes
    And the oracle reads the same guest bytes
    And the oracle finds "converted" consistent

    Examples:
      | options                              |
      | block_size=1M                        |
