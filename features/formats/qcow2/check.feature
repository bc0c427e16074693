@format:qcow2 @spec:qcow2
Feature: checking and repairing qcow2 images
  check finds corruption (exit status 2) and leaked clusters (exit status 3, harmless
  waste); -r leaks repairs leaks only, -r all repairs everything it can.

  @op:check
  Scenario: a fresh image with data has no corruption
    Given a 64 MiB qcow2 image
    And 1 MiB of pattern 0x5a written at offset 8 MiB
    When the image is checked
    Then the check reports no corruption

  @op:check
  Scenario: a leaked cluster is reported
    Given a 64 MiB qcow2 image
    And 1 MiB of pattern 0x5a written at offset 8 MiB
    And the image has a leaked cluster
    When the image is checked
    Then the check reports 1 leaked cluster

  @op:repair
  Scenario Outline: check -r <mode> repairs a leak
    Given a 64 MiB qcow2 image
    And 1 MiB of pattern 0x5a written at offset 8 MiB
    And the image has a leaked cluster
    When the image is checked with repair "<mode>"
    Then the repair fixed 1 leaked cluster
    And the check reports no corruption
    And the 1 MiB at offset 8 MiB reads back as pattern 0x5a
    And the oracle finds the image consistent

    Examples:
      | mode  |
      | leaks |
      | all   |

  @op:repair
  Scenario: lost reference counts are corruption, and -r all repairs them
    Given a 64 MiB qcow2 image
    And 1 MiB of pattern 0x5a written at offset 8 MiB
    And the image was left by a writer that crashed before updating reference counts
    When the image is checked
    Then the check reports corruption
    When the image is checked with repair "all"
    Then the repair fixed the corruption
    And the 1 MiB at offset 8 MiB reads back as pattern 0x5a
    And the oracle finds the image consistent

  @op:write @requires:qemu-img
  Scenario: an image marked corrupt is not opened for writing
    Given a qcow2 image marked corrupt
    When a write of the image opened read-write is attempted
    Then opening for writing is refused naming "corrupt"
    And the image file is unchanged

  @op:read @requires:qemu-img
  Scenario: an image marked corrupt can still be read
    Given a qcow2 image marked corrupt
    Then the 1 MiB at offset 0 reads back as zeroes
    And the image file is unchanged

  @op:repair @requires:qemu-img
  Scenario: check -r all clears the corrupt mark of a consistent image
    Given a qcow2 image marked corrupt
    When the image is checked with repair "all"
    Then the image info reports format-specific "corrupt" false
    And the oracle finds the image consistent
