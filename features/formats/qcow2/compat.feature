@format:qcow2 @op:create @spec:qcow2.compat
Feature: compat chooses the qcow2 version
  compat=0.10 is the traditional format any QEMU since 0.10 reads; compat=1.1 (the
  default) enables extensions only QEMU 1.1 and newer understand, zero clusters among them.

  Scenario Outline: compat=<compat> makes an image of version <reported>
    When a 64 MiB qcow2 image is created with "compat=<compat>"
    Then creation succeeds
    And the image info reports format-specific "compat" "<reported>"
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reports the same info

    Examples:
      | compat | reported |
      | 0.10   | 0.10     |
      | 1.1    | 1.1      |

  # 7.2 also accepts the version names v2 and v3 (not in the manual)
  @qemu-since:5.1
  Scenario Outline: compat=<compat> is another name of version <reported>
    When a 64 MiB qcow2 image is created with "compat=<compat>"
    Then creation succeeds
    And the image info reports format-specific "compat" "<reported>"

    Examples:
      | compat | reported |
      | v2     | 0.10     |
      | v3     | 1.1      |

  Scenario Outline: compat=<compat> is not a qcow2 version
    When a 64 MiB qcow2 image is created with "compat=<compat>"
    Then creation fails naming "compat"
    And no image file is left behind

    Examples:
      | compat |
      | 1.0    |
      | 2.0    |
      | 0.9    |
      | latest |

  Scenario Outline: data written to a compat=<compat> image reads back
    Given a 64 MiB qcow2 image created with "compat=<compat>"
    When 1 MiB of pattern 0x5a is written at offset 8 MiB
    And 64 KiB at offset 8 MiB are zeroed
    Then the 64 KiB at offset 8 MiB reads back as zeroes
    And the 960 KiB at offset 8256 KiB reads back as pattern 0x5a
    And the map shows 64 KiB at offset 8 MiB as zeroes
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

    Examples:
      | compat |
      | 0.10   |
      | 1.1    |

  Scenario: compat=1.1 zeroes a cluster without giving up its allocation
    Given a 64 MiB qcow2 image created with "compat=1.1"
    And 1 MiB of pattern 0x5a written at offset 0
    When 64 KiB at offset 0 are zeroed
    Then the map shows 64 KiB at offset 0 as zeroes
    And the map shows 64 KiB at offset 0 as allocated
    And the 64 KiB at offset 0 reads back as zeroes
    And the oracle finds the image consistent
