@format:qed @spec:qed.backing_file
Feature: qed backing files
  An overlay reads what it has not written from its backing file; a partly written
  cluster is completed from the backing file (copy on write), so the rest of it keeps
  reading the backing data. qed stores the backing name and, for a raw backing file,
  a flag that turns probing off. The manual calls backing_fmt optional; QEMU 7.2 (and
  the reference, which follows it) refuses a backing file given without its format.

  @op:create @op:read
  Scenario Outline: an overlay of a <base> base reads the base's data
    Given a 64 MiB <base> image "base"
    And 2 MiB of pattern 0x5a written to "base" at offset 0
    When a qed image "top" is created backed by "base"
    Then creation succeeds
    And the info of "top" reports "backing-filename" "base.<base>"
    And the info of "top" shows a backing chain of 2 images
    And the 2 MiB of "top" at offset 0 reads back as pattern 0x5a
    And the oracle reads the same guest bytes from "top"
    And the oracle reports the same info for "top"

    Examples:
      | base  |
      | raw   |
      | qcow2 |
      | qed   |

  @op:write @op:read
  Scenario: writes to the overlay copy the rest of the cluster from the base
    Given a 64 MiB raw image "base"
    And 2 MiB of pattern 0x5a written to "base" at offset 0
    And a qed image "top" backed by "base"
    When 4 KiB of pattern 0x22 is written to "top" at offset 8 KiB
    Then the 4 KiB of "top" at offset 8 KiB reads back as pattern 0x22
    And the 8 KiB of "top" at offset 0 reads back as pattern 0x5a
    And the 52 KiB of "top" at offset 12 KiB reads back as pattern 0x5a
    And the 2 MiB of "base" at offset 0 reads back as pattern 0x5a
    And the oracle finds "top" consistent
    And the oracle reads the same guest bytes from "top"

  @op:write @op:read
  Scenario: a zeroed range of the overlay hides the base
    Given a 64 MiB raw image "base"
    And 2 MiB of pattern 0x5a written to "base" at offset 0
    And a qed image "top" backed by "base"
    When 1 MiB at offset 0 is zeroed
    Then the 1 MiB of "top" at offset 0 reads back as zeroes
    And the 1 MiB of "top" at offset 1 MiB reads back as pattern 0x5a
    And the 1 MiB of "base" at offset 0 reads back as pattern 0x5a
    And the oracle finds "top" consistent
    And the oracle reads the same guest bytes from "top"

  @op:create @op:read @spec:qed.backing_fmt
  Scenario: backing_fmt is optional (the manual): without it the base's format is probed
    Given a 64 MiB qcow2 image "base"
    And 1 MiB of pattern 0x5a written to "base" at offset 0
    When a qed image "top" is created backed by "base" without a backing format
    Then creation succeeds
    And the 1 MiB of "top" at offset 0 reads back as pattern 0x5a

  @op:create @spec:qed.backing_fmt
  Scenario: backing_fmt=raw is recorded (probing off) and reported
    Given a 64 MiB raw image "base"
    When a qed image "top" is created backed by "base"
    Then creation succeeds
    And the info of "top" reports "backing-filename-format" "raw"
    And the oracle reports the same info for "top"

  @op:create @op:read
  Scenario: an overlay bigger than its base reads zeroes past the base's end
    Given a 1 MiB raw image "base"
    And 1 MiB of pattern 0x5a written to "base" at offset 0
    When a 4 MiB qed image "top" is created backed by "base"
    Then creation succeeds
    And the 1 MiB of "top" at offset 0 reads back as pattern 0x5a
    And the 3 MiB of "top" at offset 1 MiB reads back as zeroes
    And the oracle reads the same guest bytes from "top"
