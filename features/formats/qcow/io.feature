@format:qcow @spec:qcow
Feature: guest I/O on qcow images
  What the guest writes reads back. qcow has neither zero clusters nor discard: zeroing
  writes zeroes (the range becomes allocated data), a discard succeeds and keeps the
  data, as in QEMU 7.2. Nothing goes past the virtual size.

  @op:write @op:read
  Scenario Outline: <length> of pattern <pattern> at offset <offset> reads back
    Given a 64 MiB qcow image
    When <length> of pattern <pattern> is written at offset <offset>
    Then the <length> at offset <offset> reads back as pattern <pattern>
    And the oracle reads the same guest bytes
    And the oracle reports the same map

    Examples:
      | length     | pattern | offset     |
      | 512 bytes  | 0x01    | 0          |
      | 1000 bytes | 0xa5    | 1000 bytes |
      | 1 byte     | 0x42    | 100 bytes  |
      | 64 KiB     | 0x5a    | 64 KiB     |
      | 100 KiB    | 0x77    | 60 KiB     |
      | 3 MiB      | 0x5a    | 1 MiB      |
      | 64 KiB     | 0xff    | 65472 KiB  |

  @op:write @op:read
  Scenario: a partial overwrite keeps the rest of the cluster
    Given a 64 MiB qcow image
    And 64 KiB of pattern 0x11 written at offset 0
    When 1000 bytes of pattern 0x22 is written at offset 5000 bytes
    Then the 5000 bytes at offset 0 reads back as pattern 0x11
    And the 1000 bytes at offset 5000 bytes reads back as pattern 0x22
    And the 58 KiB at offset 6 KiB reads back as pattern 0x11
    And the oracle reads the same guest bytes

  @op:write @op:map
  Scenario Outline: a range that is <how> reads back as zeroes and is allocated
    Given a 64 MiB qcow image
    And 1 MiB of pattern 0x5a written at offset 0
    When 1 MiB at offset 4 MiB is <how>
    And 100 KiB at offset 512 KiB is <how>
    Then the 1 MiB at offset 4 MiB reads back as zeroes
    And the 100 KiB at offset 512 KiB reads back as zeroes
    And the 512 KiB at offset 0 reads back as pattern 0x5a
    And the map shows 1 MiB at offset 4 MiB as data
    And the oracle reads the same guest bytes
    And the oracle reports the same map

    Examples:
      | how               |
      | zeroed            |
      | zeroed with unmap |

  @op:write
  Scenario: a discard keeps the data (qcow has no discard)
    Given a 64 MiB qcow image
    And 1 MiB of pattern 0x5a written at offset 0
    When 1 MiB at offset 0 is discarded
    Then the 1 MiB at offset 0 reads back as pattern 0x5a
    And the oracle reads the same guest bytes

  @op:write
  Scenario Outline: a write of <length> at offset <offset> past the end is refused
    Given a 64 MiB qcow image
    When a write of <length> of pattern 0x5a at offset <offset> is attempted
    Then the write fails
    And the whole disk reads back as zeroes

    Examples:
      | length | offset    |
      | 1 MiB  | 64 MiB    |
      | 1 MiB  | 65024 KiB |

  @op:read @op:map @requires:qemu-img
  Scenario: compressed clusters written by qemu-img convert -c read back
    Given a qcow image with compressed clusters made by qemu-img
    Then the 512 KiB at offset 0 reads back as pattern 0x44
    And the 512 KiB at offset 512 KiB reads back as zeroes
    And the oracle reads the same guest bytes
    And the oracle reports the same map

  @op:write @requires:qemu-img
  Scenario: a partial write into a compressed cluster keeps the rest of it
    Given a qcow image with compressed clusters made by qemu-img
    When 100 bytes of pattern 0x09 is written at offset 1000 bytes
    Then the 100 bytes at offset 1000 bytes reads back as pattern 0x09
    And the 1000 bytes at offset 0 reads back as pattern 0x44
    And the 3000 bytes at offset 1100 bytes reads back as pattern 0x44
    And the oracle reads the same guest bytes
    And the oracle reports the same map
