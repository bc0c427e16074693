@format:bochs @spec:bochs @requires:bximage
Feature: bochs is a read-only format
  The manual lists bochs among the formats QEMU supports "in a read-only mode": an image
  opened for writing is refused (qemu-io: "Image is read-only") and the file is left
  untouched, and qemu-img cannot create one ("does not support image creation").

  @op:write
  Scenario: a write to a bochs image is refused
    Given a 1 MiB bochs image made by bximage from an empty disk
    When a write to the read-only image is attempted
    Then the write is refused naming "read-only"
    And the image file is unchanged

  @op:create
  Scenario: a bochs image cannot be created
    When a 1 MiB bochs image creation is attempted
    Then the creation is refused naming "does not support image creation"
    And no image file is left behind

  @op:check
  Scenario: qemu-img has no check for bochs
    Given a 1 MiB bochs image made by bximage from an empty disk
    When the image is checked
    Then the check reports that the format has no check
