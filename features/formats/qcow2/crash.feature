@format:qcow2 @spec:qcow2.lazy_refcounts
Feature: a writer killed before it closes the image
  With lazy_refcounts=on, reference count updates are postponed: a writer that dies leaves the
  image marked dirty, and the counts must be rebuilt - by an (automatic) check -r all on the
  next read-write open, or by qemu-img check -r all. Without lazy_refcounts nothing needs
  repairing. (The writer runs with cache=writethrough, so what it wrote reached the file.)

  @op:repair
  Scenario: an image left dirty is consistent again after repair
    Given a 64 MiB qcow2 image created with "lazy_refcounts=on"
    And 1 MiB of pattern 0x5a is written at offset 8 MiB by a writer that is killed before it closes
    Then the image info reports "dirty-flag" true
    When the image is checked with repair "all"
    Then the check reports no corruption
    And the image info reports "dirty-flag" false
    And the 1 MiB at offset 8 MiB reads back as pattern 0x5a
    And the oracle finds the image consistent
    And the oracle reads the same guest bytes

  @op:write
  Scenario: opening a dirty image read-write repairs it first
    Given a 64 MiB qcow2 image created with "lazy_refcounts=on"
    And 1 MiB of pattern 0x5b is written at offset 1 MiB by a writer that is killed before it closes
    When 64 KiB of pattern 0x5c is written at offset 32 MiB
    Then the image info reports "dirty-flag" false
    And the check reports no corruption
    And the 1 MiB at offset 1 MiB reads back as pattern 0x5b
    And the 64 KiB at offset 32 MiB reads back as pattern 0x5c
    And the oracle finds the image consistent

  @op:write
  Scenario: without lazy_refcounts a killed writer leaves a consistent image
    Given a 64 MiB qcow2 image
    And 1 MiB of pattern 0x5d is written at offset 8 MiB by a writer that is killed before it closes
    Then the image info reports "dirty-flag" false
    And the check reports no corruption
    And the 1 MiB at offset 8 MiB reads back as pattern 0x5d
    And the oracle finds the image consistent
