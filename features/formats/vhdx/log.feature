@format:vhdx @spec:vhdx @op:check
Feature: the vhdx log is replayed before the image is used
  Metadata changes (here: a new block's BAT entry) go through the log first. A writer that
  dies after logging a change but before applying it leaves a log that must be replayed:
  an image opened read-write replays it, qemu-img check -r all replays it and reports the
  repair, and an image opened read-only is refused (it would show a stale BAT). The writer
  that is interrupted here is the reference; qemu-io cannot be stopped in between.

  Background:
    Given a 20 MiB vhdx image created with "block_size=1M"
    And 1 MiB of pattern 0x11 written at offset 1 MiB
    And its writer died after logging the BAT update for 64 KiB of pattern 0x5a at offset 3 MiB

  Scenario: a read-only open is refused until the log is replayed
    When the image is opened read-only
    Then opening is refused naming "log"
    And the image file is unchanged

  Scenario: check -r all replays the log and reports the repair
    When the image is checked with repair "all"
    Then the repair fixed the corruption
    And the 64 KiB at offset 3 MiB reads back as pattern 0x5a
    And the 1 MiB at offset 1 MiB reads back as pattern 0x11
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

  Scenario: a read-write open replays the log
    When the image is opened for writing
    Then the 64 KiB at offset 3 MiB reads back as pattern 0x5a
    And the check reports no corruption
    And the oracle reads the same guest bytes
