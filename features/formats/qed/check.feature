@format:qed @op:check @spec:qed
Feature: qemu-img check for qed
  Every table and data cluster must lie inside the file, after the header, and be used
  once; unused clusters are leaks (reported, never reclaimed). Repair drops entries that
  point outside the file and clears the need-check flag. An image opened for writing
  with the flag set (a writer crashed) is checked and repaired first. (QEMU 7.2's info
  never shows that flag as dirty-flag for qed.)

  Scenario: a fresh and a written image are clean
    Given a 64 MiB qed image
    And 1 MiB of pattern 0x5a written at offset 0
    When the image is checked
    Then the check reports no corruption
    And the check counts 16 allocated clusters
    And the oracle finds the image consistent

  Scenario: a cluster nobody uses is a leak
    Given a 64 MiB qed image
    And 1 MiB of pattern 0x5a written at offset 0
    And the qed image has an unused cluster at its end
    When the image is checked
    Then the check reports 1 leaked cluster

  @op:repair
  Scenario: an L2 entry pointing past the end of the file is a corruption, and repair drops it
    Given a qed image whose L2 entry points past the end of the file
    When the image is checked
    Then the check reports corruption
    When the image is checked with repair "all"
    Then the repair fixed 1 corruption and left 1 leaked cluster
    And the 64 KiB at offset 0 reads back as zeroes
    And the 64 KiB at offset 64 KiB reads back as pattern 0x11

  Scenario: a read-only open of an image left by a crashed writer keeps its need-check flag
    Given a 64 MiB qed image
    And 1 MiB of pattern 0x5a written at offset 0
    And the qed image is marked as needing a check
    Then the image info reports "dirty-flag" false
    And the 1 MiB at offset 0 reads back as pattern 0x5a
    And the qed need-check flag is set

  @op:write
  Scenario: opening for a write checks the image and clears the need-check flag
    Given a 64 MiB qed image
    And 1 MiB of pattern 0x5a written at offset 0
    And the qed image is marked as needing a check
    When 4 KiB of pattern 0x22 is written at offset 2 MiB
    Then the qed need-check flag is clear
    And the 1 MiB at offset 0 reads back as pattern 0x5a
    And the oracle finds the image consistent

  Scenario Outline: an image whose <defect> is corrupt
    Given a qed image whose <defect>
    When the image is checked
    Then the check reports corruption

    Examples:
      | defect                                  |
      | two L2 entries point at the same cluster |
      | an L2 entry points into the L1 table     |
