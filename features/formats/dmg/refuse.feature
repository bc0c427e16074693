@format:dmg @spec:dmg @requires:bzip2
Feature: dmg is a read-only format
  The manual lists dmg among the formats QEMU supports "in a read-only mode": an image
  opened for writing is refused and left untouched, and qemu-img cannot create one.

  @op:write
  Scenario: a write to a dmg image is refused
    Given a 1 MiB dmg image made by node from an empty disk
    When a write to the read-only image is attempted
    Then the write is refused naming "read-only"
    And the image file is unchanged

  @op:create
  Scenario: a dmg image cannot be created
    When a 1 MiB dmg image creation is attempted
    Then the creation is refused naming "does not support image creation"
    And no image file is left behind

  @op:check
  Scenario: qemu-img has no check for dmg
    Given a 1 MiB dmg image made by node from an empty disk
    When the image is checked
    Then the check reports that the format has no check
