@format:parallels @spec:parallels
Feature: guest I/O on parallels images
  QEMU 7.2 writes parallels images (the manual says read-only): data written reads back,
  unallocated clusters read as zeroes, new clusters are appended to the file.

  @op:write @op:read
  Scenario Outline: <length> of pattern <pattern> at offset <offset> reads back (cluster_size=<cs>)
    Given a 16 MiB parallels image created with "cluster_size=<cs>"
    When <length> of pattern <pattern> is written at offset <offset>
    Then the <length> at offset <offset> reads back as pattern <pattern>
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes
    And the oracle reports the same map

    Examples:
      | length     | pattern | offset     | cs   |
      | 512 bytes  | 0x01    | 0          | 1M   |
      | 1 MiB      | 0x5a    | 8 MiB      | 1M   |
      | 1000 bytes | 0xa5    | 1000 bytes | 64k  |
      | 3 MiB      | 0x3c    | 512 KiB    | 64k  |
      | 64 KiB     | 0xff    | 15 MiB     | 4k   |
      | 100 KiB    | 0x11    | 3000 bytes | 3000 |

  @op:write @op:read
  Scenario: clusters are appended in write order and each keeps its data
    Given a 8 MiB parallels image created with "cluster_size=64k"
    When 4 KiB of pattern 0x5a is written at offset 1 MiB
    And 100 KiB of pattern 0x11 is written at offset 0
    And 64 KiB at offset 2 MiB is zeroed
    Then the 4 KiB at offset 1 MiB reads back as pattern 0x5a
    And the 100 KiB at offset 0 reads back as pattern 0x11
    And the 64 KiB at offset 2 MiB reads back as zeroes
    And the check counts 4 allocated clusters
    And the oracle reports the same map
    And the oracle finds the image consistent

  @op:write @op:read
  Scenario: discard gives the same guest bytes as QEMU
    Given a 8 MiB parallels image created with "cluster_size=64k"
    When 1 MiB of pattern 0x5a is written at offset 1 MiB
    And 1 MiB at offset 1 MiB is discarded
    Then the oracle reads the same guest bytes
    And the oracle finds the image consistent

  @op:convert
  Scenario Outline: converting parallels to <format> keeps the guest bytes
    Given a 8 MiB parallels image "src"
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
