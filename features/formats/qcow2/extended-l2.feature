@format:qcow2 @op:create @spec:qcow2.extended_l2 @qemu-since:5.2
Feature: extended_l2 splits clusters into subclusters
  Not in the manual; qemu-img 7.2 offers it: 32 subclusters per cluster, for clusters
  of at least 16 KiB, with compat=1.1.

  Scenario Outline: extended_l2=on with clusters of <cluster>
    Given a 64 MiB qcow2 image created with "extended_l2=on,cluster_size=<cluster>"
    When 4 KiB of pattern 0x5a is written at offset 8 MiB
    Then the image info reports format-specific "extended-l2" true
    And the 4 KiB at offset 8 MiB reads back as pattern 0x5a
    And the 4 KiB at offset 8196 KiB reads back as zeroes
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

    Examples:
      | cluster |
      | 16k     |
      | 64k     |
      | 2M      |

  Scenario: extended_l2 needs clusters of at least 16 KiB
    When a 64 MiB qcow2 image is created with "extended_l2=on,cluster_size=4096"
    Then creation fails naming "extended_l2" and "cluster size"
    And no image file is left behind

  Scenario: extended_l2 needs compat 1.1
    When a 64 MiB qcow2 image is created with "extended_l2=on,compat=0.10"
    Then creation fails naming "extended_l2" and "compat"
    And no image file is left behind

  Scenario: extended_l2 takes on or off
    When a 64 MiB qcow2 image is created with "extended_l2=maybe"
    Then creation fails naming "extended_l2"
    And no image file is left behind
