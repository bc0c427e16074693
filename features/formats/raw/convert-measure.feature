@format:raw @spec:raw
Feature: converting and measuring raw images

  @op:measure
  Scenario Outline: a <size> raw image needs exactly <size>
    When the size of a <size> raw image with "" is measured
    Then the measured required size is at least <size>
    And the measured fully allocated size is at least <size>
    And the measured required size is at most the fully allocated size
    And the oracle measures the same sizes

    Examples:
      | size      |
      | 0 bytes   |
      | 64 MiB    |
      | 1 GiB     |

  @op:convert
  Scenario: raw converted to qcow2 shows the same guest bytes
    Given a 64 MiB raw image "source"
    And 1 MiB of pattern 0x5a written to "source" at offset 8 MiB
    When image "source" is converted to qcow2 as "copy"
    Then images "source" and "copy" have the same guest bytes
    And the info of "copy" reports "format" "qcow2"
    And the info of "copy" reports a virtual size of 64 MiB
    And the oracle finds "copy" consistent
    And the oracle reads the same guest bytes from "copy"

  @op:convert
  Scenario: qcow2 converted to raw shows the same guest bytes
    Given a 64 MiB qcow2 image "source"
    And 1 MiB of pattern 0xa5 written to "source" at offset 8 MiB
    When image "source" is converted to raw as "copy"
    Then images "source" and "copy" have the same guest bytes
    And the info of "copy" reports "format" "raw"
    And the oracle reads the same guest bytes from "copy"

  @op:convert
  Scenario: raw cannot hold compressed data
    Given a 64 MiB qcow2 image
    And 1 MiB of pattern 0x5a written at offset 0
    When a compressed conversion of the image to raw is attempted
    Then the conversion fails naming "compress"
    And no image file is left behind
