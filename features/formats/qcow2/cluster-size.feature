@format:qcow2 @op:create @spec:qcow2.cluster_size
Feature: cluster_size sets the qcow2 cluster size
  The cluster size must be between 512 and 2M (a power of two). Smaller clusters can
  make smaller files, larger ones generally perform better.

  Scenario Outline: cluster_size=<value> makes clusters of <bytes> bytes
    When a 64 MiB qcow2 image is created with "cluster_size=<value>"
    Then creation succeeds
    And the image info reports "cluster-size" <bytes>
    And the check reports no corruption
    And the oracle reports the same info

    Examples:
      | value   | bytes   |
      | 512     | 512     |
      | 1024    | 1024    |
      | 4096    | 4096    |
      | 64k     | 65536   |
      | 65536   | 65536   |
      | 1M      | 1048576 |
      | 2M      | 2097152 |
      | 2097152 | 2097152 |

  Scenario Outline: data crossing clusters of <value> bytes reads back
    Given a 64 MiB qcow2 image created with "cluster_size=<value>"
    When 1 MiB of pattern 0x5a is written at offset 8 MiB
    And 1000 bytes of pattern 0xa5 is written at offset 3000 bytes
    Then the 1 MiB at offset 8 MiB reads back as pattern 0x5a
    And the 1000 bytes at offset 3000 bytes reads back as pattern 0xa5
    And the 3000 bytes at offset 0 reads back as zeroes
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

    Examples:
      | value   |
      | 512     |
      | 4096    |
      | 65536   |
      | 2097152 |

  Scenario Outline: cluster_size=<value> is refused
    When a 64 MiB qcow2 image is created with "cluster_size=<value>"
    Then creation fails naming "cluster_size"
    And no image file is left behind

    Examples:
      | value   |
      | 0       |
      | 256     |
      | 3000    |
      | 4194304 |
      | 4M      |
      | abc     |
