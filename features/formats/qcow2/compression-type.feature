@format:qcow2 @spec:qcow2.compression_type @qemu-since:5.1
Feature: compression_type chooses how compressed clusters are compressed
  Not in the manual; qemu-img 7.2 offers zlib (the default, readable by every version)
  and zstd (needs compat=1.1).

  @op:create @op:convert
  Scenario Outline: clusters compressed with <type> read back
    Given a 64 MiB qcow2 image "source"
    And 1 MiB of pattern 0x5a written to "source" at offset 8 MiB
    When the image is converted to qcow2 compressed with "compression_type=<type>"
    Then the image info reports format-specific "compression-type" "<type>"
    And the check counts some compressed clusters
    And images "source" and "converted" have the same guest bytes
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

    Examples:
      | type |
      | zlib |
      | zstd |

  @op:create
  Scenario: compression_type=lz4 is not offered
    When a 64 MiB qcow2 image is created with "compression_type=lz4"
    Then creation fails naming "compression_type"
    And no image file is left behind

  @op:create
  Scenario: zstd needs compat 1.1
    When a 64 MiB qcow2 image is created with "compat=0.10,compression_type=zstd"
    Then creation fails naming "compression" and "compat"
    And no image file is left behind
