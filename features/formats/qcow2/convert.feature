@format:qcow2 @op:convert @spec:qcow2
Feature: converting to and from qcow2
  Conversion copies the guest bytes; -c compresses the clusters it writes (zlib by
  default); -o sets the target's options; -n writes into an image that exists.

  Scenario: a compressed conversion shows the same bytes in fewer clusters
    Given a 64 MiB qcow2 image "source"
    And 4 MiB of pattern 0x5a written to "source" at offset 8 MiB
    When the image is converted to qcow2 compressed
    Then the check counts some compressed clusters
    And the check reports no corruption
    And images "source" and "converted" have the same guest bytes
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

  Scenario: a compressed cluster that is overwritten reads the new data
    Given a 64 MiB qcow2 image "source"
    And 1 MiB of pattern 0x5a written to "source" at offset 0
    And the image is converted to qcow2 compressed
    When 4 KiB of pattern 0xa5 is written at offset 4 KiB
    Then the 4 KiB at offset 0 reads back as pattern 0x5a
    And the 4 KiB at offset 4 KiB reads back as pattern 0xa5
    And the 1016 KiB at offset 8 KiB reads back as pattern 0x5a
    And the check reports no corruption
    And the oracle finds the image consistent

  Scenario Outline: converting with "<options>" sets the target's <field>
    Given a 64 MiB qcow2 image "source"
    And 1 MiB of pattern 0x5a written to "source" at offset 8 MiB
    When the image is converted to qcow2 with "<options>"
    Then the image info reports <field> <value>
    And images "source" and "converted" have the same guest bytes
    And the oracle finds the image consistent

    Examples:
      | options             | field                               | value  |
      | cluster_size=4096   | "cluster-size"                      | 4096   |
      | compat=0.10         | format-specific "compat"            | "0.10" |
      | refcount_bits=1     | format-specific "refcount-bits"     | 1      |
      | lazy_refcounts=on   | format-specific "lazy-refcounts"    | true   |

  Scenario: converting into an existing image keeps that image's options
    Given a 64 MiB qcow2 image "source"
    And 1 MiB of pattern 0x5a written to "source" at offset 8 MiB
    And a 64 MiB qcow2 image "target" created with "cluster_size=4096"
    When image "source" is converted into the existing image "target"
    Then images "source" and "target" have the same guest bytes
    And the image info reports "cluster-size" 4096
    And the oracle finds "target" consistent

  Scenario: zeroes in the source are not allocated in the target
    Given a 64 MiB raw image "source"
    And 1 MiB of pattern 0x5a written to "source" at offset 8 MiB
    When the image is converted to qcow2
    Then the map shows 8 MiB at offset 0 as unallocated
    And the map shows 1 MiB at offset 8 MiB as data
    And the image file occupies less than 4 MiB on the host

  Scenario: a conversion with an invalid option fails and leaves nothing
    Given a 64 MiB qcow2 image "source"
    When a conversion of the image to qcow2 with "cluster_size=3000" is attempted
    Then the conversion fails naming "cluster_size"
    And no image file is left behind
