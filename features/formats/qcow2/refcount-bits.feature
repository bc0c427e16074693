@format:qcow2 @op:create @spec:qcow2.refcount_bits @qemu-since:2.3
Feature: refcount_bits sets the width of a reference count entry
  Not in the manual; qemu-img 7.2 documents it in "-o help": a power of two up to 64,
  and widths other than 16 need compat=1.1.

  Scenario Outline: refcount_bits=<bits> makes a consistent image
    Given a 64 MiB qcow2 image created with "refcount_bits=<bits>"
    When 1 MiB of pattern 0x5a is written at offset 8 MiB
    Then the image info reports format-specific "refcount-bits" <bits>
    And the 1 MiB at offset 8 MiB reads back as pattern 0x5a
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reports the same info

    Examples:
      | bits |
      | 1    |
      | 2    |
      | 4    |
      | 8    |
      | 16   |
      | 32   |
      | 64   |

  Scenario Outline: refcount_bits=<bits> is refused
    When a 64 MiB qcow2 image is created with "refcount_bits=<bits>"
    Then creation fails naming "refcount"
    And no image file is left behind

    Examples:
      | bits |
      | 0    |
      | 3    |
      | 128  |

  Scenario: widths other than 16 need compat 1.1
    When a 64 MiB qcow2 image is created with "compat=0.10,refcount_bits=8"
    Then creation fails naming "refcount" and "compat"
    And no image file is left behind
