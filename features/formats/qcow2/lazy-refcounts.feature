@format:qcow2 @spec:qcow2.lazy_refcounts
Feature: lazy_refcounts postpones reference count updates
  With lazy_refcounts=on, refcount updates are postponed; after a host crash the
  refcount tables must be rebuilt (qemu-img check -r all, automatic on the next
  open). The option needs compat=1.1.

  @op:create
  Scenario Outline: lazy_refcounts=<value> is recorded in the image
    When a 64 MiB qcow2 image is created with "lazy_refcounts=<value>"
    Then creation succeeds
    And the image info reports format-specific "lazy-refcounts" <reported>
    And the oracle reports the same info

    Examples:
      | value | reported |
      | on    | true     |
      | off   | false    |

  @op:create
  Scenario: lazy_refcounts needs compat 1.1
    When a 64 MiB qcow2 image is created with "compat=0.10,lazy_refcounts=on"
    Then creation fails naming "lazy_refcounts" and "compat"
    And no image file is left behind

  @op:create
  Scenario: lazy_refcounts=off is fine with compat 0.10
    When a 64 MiB qcow2 image is created with "compat=0.10,lazy_refcounts=off"
    Then creation succeeds
    And the image info reports format-specific "compat" "0.10"
    And the oracle finds the image consistent

  @op:create
  Scenario: lazy_refcounts takes on or off
    When a 64 MiB qcow2 image is created with "lazy_refcounts=maybe"
    Then creation fails naming "lazy_refcounts"
    And no image file is left behind

  @op:write
  Scenario: an image with lazy refcounts is consistent once closed cleanly
    Given a 64 MiB qcow2 image created with "lazy_refcounts=on"
    When 1 MiB of pattern 0x5a is written at offset 8 MiB
    Then the image info reports "dirty-flag" false
    And the check reports no corruption
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

  @op:repair
  Scenario: an image left dirty is consistent again after repair
    Given a 64 MiB qcow2 image created with "lazy_refcounts=on"
    And 1 MiB of pattern 0x5a written at offset 8 MiB
    And the image was left by a writer that crashed before updating reference counts
    Then the image info reports "dirty-flag" true
    When the image is checked with repair "all"
    Then the repair fixed the corruption
    And the image info reports "dirty-flag" false
    And the 1 MiB at offset 8 MiB reads back as pattern 0x5a
    And the oracle finds the image consistent

  @op:write
  Scenario: opening a dirty image for writing repairs it
    Given a 64 MiB qcow2 image created with "lazy_refcounts=on"
    And 1 MiB of pattern 0x5a written at offset 8 MiB
    And the image was left by a writer that crashed before updating reference counts
    When 64 KiB of pattern 0x11 is written at offset 0
    Then the image info reports "dirty-flag" false
    And the check reports no corruption
    And the 1 MiB at offset 8 MiB reads back as pattern 0x5a
    And the 64 KiB at offset 0 reads back as pattern 0x11
    And the oracle finds the image consistent
