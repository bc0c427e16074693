@format:raw @op:resize @spec:raw.preallocation
Feature: resizing raw images
  A raw image is its file: resizing grows or truncates it. Shrinking needs --shrink. The new
  area can be preallocated (falloc, full); raw has no metadata to preallocate.

  Scenario: growing keeps the data and the new area reads as zeroes
    Given a 4 MiB raw image
    And 64 KiB of pattern 0x21 is written at offset 0
    When the image is resized to "+4M"
    Then the resize succeeds
    And the image info reports a virtual size of 8 MiB
    And the 64 KiB at offset 0 reads back as pattern 0x21
    And the 4 MiB at offset 4 MiB reads back as zeroes
    And the oracle reads the same guest bytes

  Scenario: shrinking without --shrink is refused
    Given a 4 MiB raw image
    When the image is resized to "1M"
    Then the resize fails naming "shrink"
    And the image info reports a virtual size of 4 MiB

  Scenario: shrinking with --shrink truncates the disk
    Given a 4 MiB raw image
    And 64 KiB of pattern 0x22 is written at offset 0
    When the image is resized to "1M" with --shrink
    Then the resize succeeds
    And the image info reports a virtual size of 1 MiB
    And the 64 KiB at offset 0 reads back as pattern 0x22

  Scenario Outline: growing with preallocation=<mode>
    Given a 4 MiB raw image
    When the image is resized to "+4M" with preallocation "<mode>"
    Then the resize succeeds
    And the image info reports a virtual size of 8 MiB
    And the 4 MiB at offset 4 MiB reads back as zeroes

    Examples:
      | mode   |
      | off    |
      | falloc |
      | full   |

  Scenario: preallocation=metadata does not exist for raw
    Given a 4 MiB raw image
    When the image is resized to "+4M" with preallocation "metadata"
    Then the resize fails naming "metadata"
    And the image info reports a virtual size of 4 MiB
