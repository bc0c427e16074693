@format:vdi @spec:vdi
Feature: guest I/O on vdi images
  Data written reads back; blocks never written read as zeroes; zeroing writes zeroes.

  @op:write @op:read
  Scenario Outline: <length> of pattern <pattern> at offset <offset> reads back (static=<static>)
    Given a 16 MiB vdi image created with "static=<static>"
    When <length> of pattern <pattern> is written at offset <offset>
    Then the <length> at offset <offset> reads back as pattern <pattern>
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes
    And the oracle reports the same map

    Examples:
      | length     | pattern | offset     | static |
      | 512 bytes  | 0x01    | 0          | off    |
      | 1 MiB      | 0x5a    | 8 MiB      | off    |
      | 1000 bytes | 0xa5    | 1000 bytes | off    |
      | 3 MiB      | 0x3c    | 512 KiB    | off    |
      | 64 KiB     | 0xff    | 15 MiB     | on     |
      | 3 MiB      | 0x3c    | 512 KiB    | on     |

  @op:write @op:read
  Scenario: blocks are allocated in write order and each keeps its data
    Given a 8 MiB vdi image
    When 4 KiB of pattern 0x5a is written at offset 2 MiB
    And 100 KiB of pattern 0x11 is written at offset 512 bytes
    And 1 MiB at offset 4 MiB is zeroed
    Then the 4 KiB at offset 2 MiB reads back as pattern 0x5a
    And the 100 KiB at offset 512 bytes reads back as pattern 0x11
    And the 1 MiB at offset 4 MiB reads back as zeroes
    And the oracle reports the same map
    And the oracle finds the image consistent

  @op:write @op:read
  Scenario: discard leaves the data readable as zeroes or as it was, the same for both
    Given a 8 MiB vdi image
    When 1 MiB of pattern 0x5a is written at offset 1 MiB
    And 1 MiB at offset 1 MiB is discarded
    Then the oracle reads the same guest bytes
    And the oracle finds the image consistent

  @op:convert
  Scenario Outline: converting vdi to <format> keeps the guest bytes
    Given a 8 MiB vdi image "src"
    And 1 MiB of pattern 0x5a written to "src" at offset 3 MiB
    When image "src" is converted to <format> as "dst"
    Then images "src" and "dst" have the same guest bytes
    And the oracle reads the same guest bytes from "dst"

    Examples:
      | format    |
      | raw       |
      | qcow2     |
      | vdi       |
      | parallels |

  @op:convert
  Scenario: converting qcow2 to vdi keeps the guest bytes
    Given a 8 MiB qcow2 image "src"
    And 64 KiB of pattern 0x77 written to "src" at offset 5 MiB
    When image "src" is converted to vdi as "dst"
    Then images "src" and "dst" have the same guest bytes
    And the oracle finds "dst" consistent
    And the oracle reads the same guest bytes from "dst"
