@format:qcow2 @op:bitmap @spec:qcow2.bitmaps @qemu-since:4.0
Feature: qcow2 persistent dirty bitmaps
  A qcow2 v3 image can carry persistent dirty bitmaps (the bitmaps header extension): each
  marks, at its granularity, which parts of the disk were written while it was enabled.
  qemu-img bitmap adds, removes, clears, enables and disables them; qemu-img info lists
  them with their flags and granularity. Writes must keep enabled bitmaps true.

  Scenario: a write marks an enabled bitmap made by the oracle, chunk by chunk
    Given a 4 MiB qcow2 image
    And the oracle adds bitmap "b0"
    When 64 KiB of pattern 0x12 is written at offset 100 KiB
    Then bitmap "b0" marks exactly the 64 KiB at offset 100 KiB
    And the oracle finds the image consistent

  Scenario: a cleared bitmap marks nothing, a disabled one records no writes, a removed one is gone
    Given a 4 MiB qcow2 image
    And bitmap "b0" is added
    And 64 KiB of pattern 0x13 is written at offset 0
    When bitmap "b0" is cleared
    Then bitmap "b0" marks nothing
    When bitmap "b0" is disabled
    And 64 KiB of pattern 0x14 is written at offset 1 MiB
    Then bitmap "b0" marks nothing
    When bitmap "b0" is removed
    Then the oracle lists the bitmaps ""
    And the oracle finds the image consistent

  Scenario: added bitmaps are listed with their flags and granularity; impossible operations are refused
    Given a 4 MiB qcow2 image
    And bitmap "b0" is added
    And bitmap "b1" is added disabled with granularity "128k"
    Then the image info lists the bitmaps "b0 auto 65536, b1 - 131072"
    When adding bitmap "b0" is attempted
    Then the bitmap operation fails naming "already exists"
    When removing bitmap "nosuch" is attempted
    Then the bitmap operation fails naming "not found"
    When adding bitmap "b9" with granularity "1000" is attempted
    Then the bitmap operation fails naming "granularity"
    And the oracle lists the bitmaps "b0 auto 65536, b1 - 131072"
    And the oracle finds the image consistent

  @spec:qcow2.compat
  Scenario: a version 2 image cannot store bitmaps
    Given a 1 MiB qcow2 image created with "compat=0.10"
    When adding bitmap "b0" is attempted
    Then the bitmap operation fails naming "v2"
