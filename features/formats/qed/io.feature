@format:qed @spec:qed
Feature: guest I/O on qed images
  What the guest writes reads back; zeroed ranges read as zeroes; qed has no discard
  (QEMU succeeds and keeps the data); nothing goes past the virtual size.

  @op:write @op:read
  Scenario Outline: <length> of pattern <pattern> at offset <offset> reads back
    Given a 64 MiB qed image
    When <length> of pattern <pattern> is written at offset <offset>
    Then the <length> at offset <offset> reads back as pattern <pattern>
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes
    And the oracle reports the same map

    Examples:
      | length     | pattern | offset     |
      | 512 bytes  | 0x01    | 0          |
      | 1000 bytes | 0xa5    | 1000 bytes |
      | 64 KiB     | 0x5a    | 64 KiB     |
      | 100 KiB    | 0x77    | 60 KiB     |
      | 1 MiB      | 0x5a    | 8 MiB      |
      | 64 KiB     | 0xff    | 65472 KiB  |

  @op:write @op:read @spec:qed.cluster_size @spec:qed.table_size
  Scenario Outline: data across clusters and L2 tables with "<options>" reads back
    Given a 64 MiB qed image created with "<options>"
    When 3 MiB of pattern 0x5a is written at offset 1 MiB
    And 1000 bytes of pattern 0xa5 is written at offset 3000 bytes
    Then the 3 MiB at offset 1 MiB reads back as pattern 0x5a
    And the 1000 bytes at offset 3000 bytes reads back as pattern 0xa5
    And the 3000 bytes at offset 0 reads back as zeroes
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

    Examples:
      | options                      |
      | cluster_size=4k,table_size=2 |
      | table_size=16                |

  @op:write @op:read @spec:qed.table_size
  Scenario: data across one-cluster tables (table_size=1, as the manual allows) reads back
    Given a 64 MiB qed image created with "cluster_size=4k,table_size=1"
    When 3 MiB of pattern 0x5a is written at offset 1 MiB
    Then the 3 MiB at offset 1 MiB reads back as pattern 0x5a
    And the 1 MiB at offset 0 reads back as zeroes
    And the check reports no corruption

  @op:write
  Scenario: a partial overwrite keeps the rest of the cluster
    Given a 64 MiB qed image
    And 64 KiB of pattern 0x11 written at offset 0
    When 4 KiB of pattern 0x22 is written at offset 8 KiB
    Then the 8 KiB at offset 0 reads back as pattern 0x11
    And the 4 KiB at offset 8 KiB reads back as pattern 0x22
    And the 52 KiB at offset 12 KiB reads back as pattern 0x11
    And the oracle reads the same guest bytes

  @op:write @op:map
  Scenario Outline: a range that is <how> reads back as zeroes
    Given a 64 MiB qed image
    And 1 MiB of pattern 0x5a written at offset 0
    When 1 MiB at offset 4 MiB is <how>
    And 100 KiB at offset 512 KiB is <how>
    Then the 1 MiB at offset 4 MiB reads back as zeroes
    And the 100 KiB at offset 512 KiB reads back as zeroes
    And the 512 KiB at offset 0 reads back as pattern 0x5a
    And the map shows 1 MiB at offset 4 MiB as zeroes
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes
    And the oracle reports the same map

    Examples:
      | how               |
      | zeroed            |
      | zeroed with unmap |

  @op:write
  Scenario: a discard keeps the data (qed has no discard)
    Given a 64 MiB qed image
    And 1 MiB of pattern 0x5a written at offset 0
    When 1 MiB at offset 0 is discarded
    Then the 1 MiB at offset 0 reads back as pattern 0x5a
    And the oracle reads the same guest bytes

  @op:write
  Scenario Outline: a write of <length> at offset <offset> past the end is refused
    Given a 64 MiB qed image
    When a write of <length> of pattern 0x5a at offset <offset> is attempted
    Then the write fails
    And the whole disk reads back as zeroes
    And the check reports no corruption

    Examples:
      | length | offset |
      | 1 MiB  | 64 MiB |
      | 1 MiB  | 65024 KiB |
