@format:vmdk @spec:vmdk
Feature: guest I/O on vmdk images
  A sparse extent allocates a whole 64 KiB grain on the first write to it, at the end of its
  file (the rest of the grain is zeroes), and records it in both grain tables; a flat extent
  is written in place. A stream-optimized extent takes each grain once, whole, compressed.
  With zeroed_grain a zero write marks whole grains zero instead of writing them. The first
  write of each open gives the disk a new CID.

  @op:write @op:read @spec:vmdk.subformat
  Scenario Outline: <length> of pattern <pattern> at <offset> in a <subformat> image reads back
    Given a 3 MiB vmdk image created with "subformat=<subformat>"
    When <length> of pattern <pattern> is written at offset <offset>
    Then the <length> at offset <offset> reads back as pattern <pattern>
    And the oracle reads the same guest bytes
    And the oracle reports the same map

    Examples:
      | subformat            | length     | pattern | offset     |
      | monolithicSparse     | 1 MiB      | 0x5a    | 1000 KiB   |
      | monolithicFlat       | 100 KiB    | 0x77    | 2020 KiB   |
      | twoGbMaxExtentSparse | 200 KiB    | 0x3c    | 60 KiB     |
      | streamOptimized      | 128 KiB    | 0x42    | 192 KiB    |

  @op:write @spec:vmdk.subformat @spec:vmdk.zeroed_grain
  Scenario Outline: writes in separate opens leave the same <subformat> files as the oracle's, apart from the CIDs
    Given a 3 MiB vmdk image made with "<options>" and written in separate opens:
      | offset   | length    | pattern |
      | 60 KiB   | 8 KiB     | 0x11    |
      | 2 MiB    | 100 bytes | 0x22    |
      | 1 MiB    | 128 KiB   | zeroes  |
      | 1 MiB    | 4 KiB     | 0x33    |
    Then the oracle makes the same vmdk files apart from the CIDs
    And the oracle reads the same guest bytes

    Examples:
      | subformat            | options                                   |
      | monolithicSparse     | subformat=monolithicSparse                |
      | twoGbMaxExtentSparse | subformat=twoGbMaxExtentSparse            |
      | twoGbMaxExtentFlat   | subformat=twoGbMaxExtentFlat              |

  @op:write @op:map @spec:vmdk.zeroed_grain
  Scenario: with zeroed_grain a zero write of whole grains marks them zero
    Given a 2 MiB vmdk image created with "zeroed_grain=on"
    And 256 KiB of pattern 0x5a written at offset 0
    When 128 KiB at offset 64 KiB is zeroed
    Then the map shows 128 KiB at offset 64 KiB as zeroes
    And the 64 KiB at offset 192 KiB reads back as pattern 0x5a
    And the oracle reads the same guest bytes
    And the oracle reports the same map

  @op:write @spec:vmdk.subformat
  Scenario Outline: a stream-optimized image refuses <what>
    Given a 1 MiB vmdk image created with "subformat=streamOptimized"
    And 64 KiB of pattern 0x5a written at offset 64 KiB
    When a write of <length> of pattern 0x11 at offset <offset> is attempted
    Then the write fails
    And the 64 KiB at offset 64 KiB reads back as pattern 0x5a

    Examples:
      | what                       | length | offset |
      | a rewrite of a written grain | 64 KiB | 64 KiB |
      | a part of a grain          | 4 KiB  | 256 KiB |

  @op:write @op:read
  Scenario: writes across the boundaries of extents a descriptor names
    Given a vmdk descriptor file naming the extents:
      | type   | size    |
      | FLAT   | 100 KiB |
      | SPARSE | 1 MiB   |
      | FLAT   | 60 KiB  |
    When 200 KiB of pattern 0x6b is written at offset 50 KiB
    And 100 KiB of pattern 0x6c is written at offset 1080 KiB
    Then the image info reports a virtual size of 1184 KiB
    And the image info lists 3 extents
    And the 200 KiB at offset 50 KiB reads back as pattern 0x6b
    And the 100 KiB at offset 1080 KiB reads back as pattern 0x6c
    And the oracle reads the same guest bytes
    And the oracle reports the same map

  @op:write @op:read @spec:vmdk.subformat
  Scenario: a write across the 2 GiB boundary of twoGbMaxExtentSparse extents
    Given a 2049 MiB vmdk image created with "subformat=twoGbMaxExtentSparse"
    When 1 MiB of pattern 0x99 is written at offset 2096640 KiB
    Then the 1 MiB at offset 2096640 KiB reads back as pattern 0x99
    And the image info lists 2 extents
    And the oracle finds the image consistent

  @op:write
  Scenario: a discard keeps the data (vmdk has no discard in QEMU 7.2)
    Given a 1 MiB vmdk image
    And 128 KiB of pattern 0x5a written at offset 0
    When 128 KiB at offset 0 is discarded
    Then the 128 KiB at offset 0 reads back as pattern 0x5a

  @op:convert @spec:vmdk.subformat
  Scenario Outline: a raw image converts to vmdk with "<options>" and back
    Given a 3 MiB raw image "source"
    And 300 KiB of pattern 0x5a written to "source" at offset 100 KiB
    And 64 KiB of pattern 0x33 written to "source" at offset 2 MiB
    When the image is converted to vmdk with "<options>"
    Then images "source" and "converted" have the same guest bytes
    And the oracle reads the same guest bytes

    Examples:
      | options                    |
      | subformat=streamOptimized  |
      | subformat=monolithicFlat   |
