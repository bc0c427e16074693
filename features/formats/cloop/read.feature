@format:cloop @op:read @op:info @spec:cloop @requires:create_compressed_fs
Feature: cloop images are read as create_compressed_fs wrote them
  The manual: cloop is the "Linux Compressed Loop image, useful only to reuse directly
  compressed CD-ROM images", read only. create_compressed_fs (cloop-utils) writes the V2.0
  layout: a shell preamble, the block size and count, a table of block offsets and one zlib
  stream per block. Every block size and compression level it offers must read back as the
  disk it was given, including reads that cross block boundaries.

  Scenario Outline: blocks of <block> bytes at compression level <level> read back as the disk
    Given a 2 MiB cloop image made by create_compressed_fs with "block=<block> level=<level>" from a disk written with:
      | offset  | length | pattern |
      | 0       | 1536   | 0x11    |
      | 1044480 | 102400 | 0x22    |
      | 2096640 | 512    | 0x33    |
    Then the guest bytes are those of the disk it was made from

    Examples:
      | block   | level |
      | 512     | 9     |
      | 65536   | 0     |
      | 131072  | 1     |
      | 1048576 | 9     |

  Scenario: reads that start, end and cross inside blocks return the disk's bytes
    Given a 1 MiB cloop image made by create_compressed_fs with "block=16384 level=1" from a disk written with:
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

  Scenario: the map is one data extent over the whole disk, as qemu-img shows for cloop
    Given a 1 MiB cloop image made by create_compressed_fs with "block=65536" from a disk written with:
      | offset | length | pattern |
      | 65536  | 4096   | 0x44    |
    Then the map shows 1 MiB at offset 0 as data
    And the oracle reports the same map

  Scenario: a cloop image is probed by its preamble
    Given a 1 MiB cloop image made by create_compressed_fs from an empty disk
    When the image is renamed to "knoppix.img"
    And the image is probed by its bytes and name
    Then it is recognised as cloop
