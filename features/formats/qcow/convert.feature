@format:qcow @op:convert @spec:qcow
Feature: converting to and from qcow
  Conversion copies the guest bytes between qcow and every other format the
  implementation has; what reads as zeroes need not be written.

  Scenario Outline: a qcow image converts to <target> with the same guest bytes
    Given a 64 MiB qcow image "source"
    And 1 MiB of pattern 0x5a written to "source" at offset 8 MiB
    And 100 KiB of pattern 0xa5 written to "source" at offset 60 KiB
    When the image is converted to <target>
    Then images "source" and "converted" have the same guest bytes
    And the 1 MiB at offset 8 MiB reads back as pattern 0x5a
    And the oracle reads the same guest bytes

    Examples:
      | target    |
      | raw       |
      | qcow2     |
      | qed       |
      | qcow      |
      | vdi       |
      | parallels |

  Scenario Outline: converting a <source> image to qcow keeps the guest bytes
    Given a 64 MiB <source> image "source"
    And 1 MiB of pattern 0x5a written to "source" at offset 8 MiB
    And 100 KiB of pattern 0xa5 written to "source" at offset 60 KiB
    When the image is converted to qcow
    Then images "source" and "converted" have the same guest bytes
    And the 100 KiB at offset 60 KiB reads back as pattern 0xa5
    And the oracle reads the same guest bytes
    And the oracle reports the same map

    Examples:
      | source    |
      | raw       |
      | qcow2     |
      | qed       |
      | qcow      |
      | vdi       |
      | parallels |
