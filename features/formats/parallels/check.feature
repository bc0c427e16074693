@format:parallels @op:check @spec:parallels
Feature: qemu-img check for parallels
  Every BAT entry must name a cluster inside the file; space after the last cluster is
  leaked (repair truncates it); an image whose in-use flag is set was not closed by its
  writer (a corruption: it cannot be opened for writing until repaired). Repair "all"
  forgets clusters outside the image, so they read as zeroes again, and clears the flag.

  Scenario: a fresh and a written image are clean
    Given a 8 MiB parallels image created with "cluster_size=64k"
    And 128 KiB of pattern 0x5a written at offset 0
    And 64 KiB of pattern 0x22 written at offset 2 MiB
    When the image is checked
    Then the check reports no corruption
    And the check counts 3 allocated clusters
    And the oracle finds the image consistent

  @op:repair
  Scenario: space after the last cluster is a leak, and repair truncates it
    Given a 8 MiB parallels image created with "cluster_size=64k"
    And 128 KiB of pattern 0x5a written at offset 0
    And the parallels image has 100000 bytes of unused space at its end
    When the image is checked
    Then the check reports 2 leaked clusters
    When the image is checked with repair "leaks"
    Then the repair fixed 2 leaked clusters
    And the check reports no corruption
    And the 128 KiB at offset 0 reads back as pattern 0x5a
    And the oracle finds the image consistent

  @op:repair
  Scenario: a BAT entry outside the image is a corruption, and repair forgets it
    Given a parallels image whose a BAT entry points past the end of the file
    When the image is checked
    Then the check reports corruption
    When the image is checked with repair "all"
    Then the repair fixed the corruption
    And the 64 KiB at offset 0 reads back as pattern 0x11
    And the 64 KiB at offset 64 KiB reads back as zeroes
    And the 64 KiB at offset 2 MiB reads back as pattern 0x22
    When the image is checked
    Then the check reports no corruption

  @op:repair
  Scenario: an image a writer never closed is corrupt until repaired, then writable
    Given a parallels image whose inuse flag is set
    When the image is checked
    Then the check reports corruption
    And the 128 KiB at offset 0 reads back as pattern 0x11
    And the parallels in-use flag is set
    When the image is checked with repair "all"
    Then the check reports no corruption
    And the parallels in-use flag is clear
    When 4 KiB of pattern 0x33 is written at offset 4 MiB
    Then the 4 KiB at offset 4 MiB reads back as pattern 0x33
    And the 64 KiB at offset 2 MiB reads back as pattern 0x22
    And the oracle finds the image consistent
