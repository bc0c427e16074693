@format:vdi @op:check @spec:vdi
Feature: qemu-img check for vdi
  Every allocated block map entry must name a block below blocks_in_image that no other
  entry uses, and blocks_allocated must count them. qemu-img check only reports: vdi has
  no repair ("This image format does not support checks", exit 63). The damaged images
  are opened by the check although a normal open refuses them.

  Scenario: a fresh and a written image are clean
    Given a 8 MiB vdi image
    And 128 KiB of pattern 0x5a written at offset 0
    And 64 KiB of pattern 0x22 written at offset 2 MiB
    When the image is checked
    Then the check reports no corruption
    And the oracle finds the image consistent

  Scenario Outline: an image whose <defect> is corrupt
    Given a vdi image whose <defect>
    When the image is checked
    Then the check reports corruption
    And the image file is unchanged

    Examples:
      | defect                                            |
      | a block map entry points past blocks_in_image     |
      | a block map entry points past the end of the file |
      | two block map entries point at the same block     |
      | blocks_allocated is 3                             |

  @op:repair
  Scenario Outline: repair "<mode>" is not supported, and leaves the image as it was
    Given a vdi image whose two block map entries point at the same block
    When a repair "<mode>" of the image is attempted
    Then the repair is refused as not supported
    And the image file is unchanged

    Examples:
      | mode   |
      | leaks  |
      | all    |
