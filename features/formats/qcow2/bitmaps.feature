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

  @op:bitmap-merge
  Scenario: merging marks in the target every chunk the source marks, whatever the granularities
    Given a 4 MiB qcow2 image
    And bitmap "b0" is added
    And 64 KiB of pattern 0x15 is written at offset 0
    And bitmap "b1" is added with granularity "32k"
    And 64 KiB of pattern 0x16 is written at offset 64 KiB
    When bitmap "b0" is merged into bitmap "b1"
    Then bitmap "b1" marks exactly the 128 KiB at offset 0
    And bitmap "b0" marks exactly the 128 KiB at offset 0
    And the oracle finds the image consistent

  @op:bitmap-merge
  Scenario: merging takes the source bitmap from another image with -b and -F
    Given a 4 MiB qcow2 image "other"
    And bitmap "src" is added with granularity "128k"
    And 4 KiB of pattern 0x17 is written to "other" at offset 2 MiB
    And a 4 MiB qcow2 image "main"
    And bitmap "dst" is added
    When bitmap "src" of "other" is merged into bitmap "dst"
    Then bitmap "dst" marks exactly the 128 KiB at offset 2 MiB
    And the oracle finds "main" consistent
    And the oracle finds "other" consistent

  @op:bitmap-merge
  Scenario Outline: a merge from <source> is refused and the image is untouched
    Given a qcow2 image "hostile" whose bitmap directory points outside the file
    And a 1 MiB qcow2 image "main"
    And bitmap "dst" is added
    When merging bitmap "<bitmap>" <from> into bitmap "<target>" is attempted
    Then the bitmap operation fails naming "<word>"
    And the image file is unchanged

    Examples:
      | source                                          | bitmap | from                | target | word      |
      | a bitmap the image does not have                | nosuch | from the same image | dst    | not found |
      | a bitmap into a target that is missing          | dst    | from the same image | nosuch | not found |
      | an image file that does not exist               | b0     | of "missing"        | dst    | missing   |
      | an image whose bitmap directory is past its end | b0     | of "hostile"        | dst    | bitmap    |

  @op:resize
  Scenario Outline: bitmaps follow the disk when it is resized to <size>
    Given a 4 MiB qcow2 image
    And bitmap "fine" is added with granularity "512"
    And bitmap "b0" is added
    And 64 KiB of pattern 0x18 is written at offset 3 MiB
    When the image is resized to <resize>
    Then the oracle finds the image consistent
    And the oracle lists the bitmaps "fine auto 512, b0 auto 65536"
    And bitmap "b0" marks exactly the 64 KiB at offset 3 MiB

    Examples:
      | size     | resize                  |
      | 600 MiB  | "600M"                  |
      | 3076 KiB | "3076K" with --shrink   |

  @op:convert
  Scenario: convert --bitmaps copies every bitmap with its granularity, state and marks
    Given a 4 MiB qcow2 image
    And bitmap "b0" is added
    And bitmap "b1" is added disabled with granularity "128k"
    And 64 KiB of pattern 0x19 is written at offset 1 MiB
    When the image is converted to qcow2 with bitmaps
    Then the oracle lists the bitmaps "b0 auto 65536, b1 - 131072"
    And bitmap "b0" marks exactly the 64 KiB at offset 1 MiB
    And bitmap "b1" marks nothing
    And the oracle finds the image consistent

  @op:convert
  Scenario: convert --skip-broken-bitmaps leaves out a bitmap left in use
    Given a 4 MiB qcow2 image
    And bitmap "b0" is added
    And bitmap "bad" is added
    And bitmap "bad" is marked in use
    When the image is converted to qcow2 with bitmaps skipping broken ones
    Then the oracle lists the bitmaps "b0 auto 65536"
    And the oracle finds the image consistent

  @op:convert
  Scenario: convert --bitmaps refuses a bitmap left in use
    Given a 4 MiB qcow2 image
    And bitmap "b0" is added
    And bitmap "b0" is marked in use
    When a conversion of the image to qcow2 with bitmaps is attempted
    Then the conversion fails naming "inconsistent"

  @op:convert
  Scenario Outline: convert --bitmaps refuses a target that cannot hold bitmaps (<format> <options>)
    Given a 4 MiB qcow2 image
    And bitmap "b0" is added
    When a conversion of the image to <format> with "<options>" with bitmaps is attempted
    Then the conversion fails naming "bitmaps"

    Examples:
      | format | options     |
      | raw    |             |
      | qcow2  | compat=0.10 |
