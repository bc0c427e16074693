@format:dmg @op:read @op:info @spec:dmg @requires:bzip2 @requires:dmg2img
Feature: dmg (UDIF) images are read chunk by chunk
  The manual: dmg is the "Apple disk image" format, read only. A UDIF file ends with a
  "koly" trailer naming an XML property list whose blkx array holds a table of chunks per
  partition; a chunk is stored raw, zero-filled, "ignored" (zeroes), or compressed with
  zlib, bzip2, ADC or lzfse. No Debian tool writes UDIF, so these images come from the
  fixture writer of this repository (runner/fixtures/udif-writer.ts) and are judged by
  two independent readers: dmg2img extracts every one of them, and qemu-img reads the raw
  and zlib ones (Debian's qemu 7.2 lacks its dmg-bzip2 module, see expectations/qemu.json).

  Scenario Outline: a <layout> image of <chunk>-sector chunks in <parts> partition(s) reads back as the disk
    Given a 2 MiB dmg image made by node with "layout=<layout> chunk=<chunk> parts=<parts>" from a disk written with:
      | offset  | length | pattern |
      | 0       | 1536   | 0x11    |
      | 1044480 | 102400 | 0x22    |
      | 2096640 | 512    | 0x33    |
    Then dmg2img extracts the disk it was made from
    And the guest bytes are those of the disk it was made from

    Examples:
      | layout | chunk | parts |
      | zlib   | 256   | 1     |
      | zlib   | 1     | 1     |
      | raw    | 2048  | 3     |
      | bzip2  | 256   | 1     |
      | adc    | 64    | 1     |
      | mixed  | 64    | 2     |

  Scenario: reads that start, end and cross inside chunks return the disk's bytes
    Given a 1 MiB dmg image made by node with "layout=zlib chunk=32 parts=2" from a disk written with:
      | offset | length | pattern |
      | 0      | 1536   | 0x11    |
      | 12288  | 40960  | 0x22    |
    Then these ranges read back in one open:
      | offset | length | pattern |
      | 512    | 1024   | 0x11    |
      | 1536   | 10752  | zeroes  |
      | 12288  | 40960  | 0x22    |
      | 14336  | 4096   | 0x22    |
      | 53248  | 995328 | zeroes  |
    And the oracle reads the same guest bytes
    And the oracle reports the same info
    And the map shows 1 MiB at offset 0 as data
    And the oracle reports the same map

  Scenario Outline: a dmg image named <name> is probed as <format>: dmg is recognised by its file name only
    Given a 1 MiB dmg image made by node from an empty disk
    When the image is renamed to "<name>"
    And the image is probed by its bytes and name
    Then it is recognised as <format>

    Examples:
      | name      | format |
      | apple.dmg | dmg    |
      | apple.img | raw    |
