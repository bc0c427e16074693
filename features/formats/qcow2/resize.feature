@format:qcow2 @op:resize @spec:qcow2
Feature: resizing qcow2 images
  qemu-img resize changes the virtual size of an image. Growing keeps the guest's data and
  the new area reads as zeroes; shrinking needs --shrink and drops whatever lies past the
  new end. The new area can be preallocated like a new image (metadata, falloc, full).

  Scenario: growing keeps the data and the new area reads as zeroes
    Given a 64 MiB qcow2 image
    And 1 MiB of pattern 0x5a is written at offset 63 MiB
    When the image is resized to "1G"
    Then the resize succeeds
    And the image info reports a virtual size of 1 GiB
    And the 1 MiB at offset 63 MiB reads back as pattern 0x5a
    And the 1 MiB at offset 1000 MiB reads back as zeroes
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

  Scenario: growing past what the L1 table maps gives the image a larger L1 table
    Given a 1 MiB qcow2 image created with "cluster_size=512"
    And 64 KiB of pattern 0x11 is written at offset 0
    When the image is resized to "64M"
    Then the resize succeeds
    And the 64 KiB at offset 0 reads back as pattern 0x11
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

  Scenario: a relative size grows the image by that much
    Given a 64 MiB qcow2 image
    When the image is resized to "+16M"
    Then the resize succeeds
    And the image info reports a virtual size of 80 MiB

  Scenario: shrinking without --shrink is refused and changes nothing
    Given a 64 MiB qcow2 image
    And 1 MiB of pattern 0x33 is written at offset 60 MiB
    When the image is resized to "32M"
    Then the resize fails naming "shrink"
    And the image info reports a virtual size of 64 MiB
    And the 1 MiB at offset 60 MiB reads back as pattern 0x33

  Scenario: shrinking with --shrink drops the data past the new end
    Given a 64 MiB qcow2 image
    And 1 MiB of pattern 0x44 is written at offset 0
    And 1 MiB of pattern 0x45 is written at offset 60 MiB
    When the image is resized to "32M" with --shrink
    Then the resize succeeds
    And the image info reports a virtual size of 32 MiB
    And the 1 MiB at offset 0 reads back as pattern 0x44
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

  Scenario: shrinking and growing again does not bring old data back
    Given a 64 MiB qcow2 image
    And 1 MiB of pattern 0x46 is written at offset 60 MiB
    When the image is resized to "32M" with --shrink
    And the image is resized to "64M"
    Then the resize succeeds
    And the 1 MiB at offset 60 MiB reads back as zeroes
    And the oracle reads the same guest bytes

  Scenario Outline: growing with preallocation=<mode> keeps the new area reading as zeroes
    Given a 4 MiB qcow2 image
    And 64 KiB of pattern 0x77 is written at offset 0
    When the image is resized to "+4M" with preallocation "<mode>"
    Then the resize succeeds
    And the image info reports a virtual size of 8 MiB
    And the 4 MiB at offset 4 MiB reads back as zeroes
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

    Examples:
      | mode     |
      | off      |
      | metadata |
      | falloc   |
      | full     |

  Scenario: an unknown preallocation mode is refused
    Given a 4 MiB qcow2 image
    When the image is resized to "+4M" with preallocation "sparse"
    Then the resize fails naming "preallocation"
    And the image info reports a virtual size of 4 MiB
