@format:qcow2 @op:amend
Feature: amending qcow2 images (qemu-img amend)
  Some creation options can be changed on an existing image: compat (between 0.10 and 1.1),
  lazy_refcounts, refcount_bits, the size and the backing file. The guest's data stays as it
  was; options that only make sense at creation are refused.

  @spec:qcow2.compat
  Scenario: compat=0.10 images can be upgraded to 1.1
    Given a 4 MiB qcow2 image created with "compat=0.10"
    And 128 KiB of pattern 0x61 is written at offset 0
    When the image is amended with "compat=1.1"
    Then the amendment succeeds
    And the image info reports format-specific "compat" "1.1"
    And the 128 KiB at offset 0 reads back as pattern 0x61
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

  @spec:qcow2.compat
  Scenario: a downgrade to 0.10 keeps zeroed clusters reading as zeroes
    Given a 4 MiB qcow2 image
    And 128 KiB of pattern 0x62 is written at offset 0
    And 64 KiB at offset 0 are zeroed
    And 64 KiB at offset 64 KiB are zeroed with unmap
    When the image is amended with "compat=0.10"
    Then the amendment succeeds
    And the image info reports format-specific "compat" "0.10"
    And the 128 KiB at offset 0 reads back as zeroes
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

  @spec:qcow2.lazy_refcounts
  Scenario: lazy_refcounts can be switched on for a compat=1.1 image
    Given a 4 MiB qcow2 image
    When the image is amended with "lazy_refcounts=on"
    Then the amendment succeeds
    And the image info reports format-specific "lazy-refcounts" true
    And the oracle finds the image consistent

  @spec:qcow2.lazy_refcounts
  Scenario: lazy_refcounts cannot be switched on for a compat=0.10 image
    Given a 4 MiB qcow2 image created with "compat=0.10"
    When the image is amended with "lazy_refcounts=on"
    Then the amendment fails naming "compat"
    And the image info reports format-specific "compat" "0.10"

  @spec:qcow2.refcount_bits
  Scenario Outline: refcount_bits can be changed to <bits>
    Given a 4 MiB qcow2 image
    And 1 MiB of pattern 0x63 is written at offset 1 MiB
    When the image is amended with "refcount_bits=<bits>"
    Then the amendment succeeds
    And the image info reports format-specific "refcount-bits" <bits>
    And the 1 MiB at offset 1 MiB reads back as pattern 0x63
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

    Examples:
      | bits |
      | 1    |
      | 8    |
      | 64   |

  @spec:qcow2.refcount_bits
  Scenario: refcount_bits other than 16 needs compat 1.1
    Given a 4 MiB qcow2 image created with "compat=0.10"
    When the image is amended with "refcount_bits=8"
    Then the amendment fails naming "compat"

  @spec:qcow2.cluster_size
  Scenario Outline: <option> can only be chosen at creation
    Given a 4 MiB qcow2 image
    When the image is amended with "<option>=<value>"
    Then the amendment fails naming "<option>"
    And the image info reports "cluster-size" 65536

    Examples:
      | option        | value    |
      | cluster_size  | 4096     |
      | preallocation | metadata |

  @spec:qcow2
  Scenario: size= resizes the image
    Given a 4 MiB qcow2 image
    And 64 KiB of pattern 0x64 is written at offset 0
    When the image is amended with "size=8M"
    Then the amendment succeeds
    And the image info reports a virtual size of 8 MiB
    And the 64 KiB at offset 0 reads back as pattern 0x64
    And the oracle finds the image consistent
