@format:cloop @spec:cloop @requires:create_compressed_fs
Feature: cloop is a read-only format
  The manual lists cloop among the formats QEMU supports "in a read-only mode": an image
  opened for writing is refused and left untouched, and qemu-img cannot create one.

  @op:write
  Scenario: a write to a cloop image is refused
    Given a 1 MiB cloop image made by create_compressed_fs from an empty disk
    When a write to the read-only image is attempted
    Then the write is refused naming "read-only"
    And the image file is unchanged

  @op:create
  Scenario: a cloop image cannot be created
    When a 1 MiB cloop image creation is attempted
    Then the creation is refused naming "does not support image creation"
    And no image file is left behind

  @op:check
  Scenario: qemu-img has no check for cloop
    Given a 1 MiB cloop image made by create_compressed_fs from an empty disk
    When the image is checked
    Then the check reports that the format has no check
