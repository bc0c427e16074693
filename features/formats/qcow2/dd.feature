@format:qcow2 @op:dd @spec:qcow2.dd
Feature: qemu-img dd copies an image, or blocks of it, into a new image
  qemu-img dd reads the input image (-f, or probed) in blocks of bs bytes (512 by default),
  leaves out the first skip blocks, stops after count blocks counted from the start of the
  input (qemu-img 7.2's arithmetic: with skip, fewer blocks come out), and writes what
  remains to a new image of exactly that size, raw unless -O names a format.

  Scenario: dd copies the whole disk into a raw image
    Given a 1 MiB qcow2 image "src"
    And 64 KiB of pattern 0x61 is written to "src" at offset 0
    And 64 KiB of pattern 0x62 is written to "src" at offset 960 KiB
    When dd copies "src" to a raw image "out" with "bs=64k"
    Then images "src" and "out" have the same guest bytes
    And the info of "out" reports a virtual size of 1 MiB

  Scenario: skip leaves out the first blocks and count counts from the start of the input
    Given a 1 MiB qcow2 image "src"
    And 64 KiB of pattern 0x71 is written to "src" at offset 0
    And 64 KiB of pattern 0x72 is written to "src" at offset 64 KiB
    And 64 KiB of pattern 0x73 is written to "src" at offset 128 KiB
    When dd copies "src" to a qcow2 image "out" with "bs=64k count=3 skip=1"
    Then the info of "out" reports a virtual size of 128 KiB
    And the 64 KiB of "out" at offset 0 reads back as pattern 0x72
    And the 64 KiB of "out" at offset 64 KiB reads back as pattern 0x73
    And the oracle finds "out" consistent

  Scenario Outline: dd refuses the operand <operand>
    Given a 1 MiB qcow2 image "src"
    When dd copying "src" with "<operand>" is attempted
    Then dd fails naming "<word>"

    Examples:
      | operand   | word  |
      | bs=0      | bs    |
      | conv=sync | conv  |

  Scenario Outline: a skip past the input (<operands>) gives an empty <format> output
    Given a 1 MiB qcow2 image "src"
    And 64 KiB of pattern 0x74 is written to "src" at offset 0
    When dd copies "src" to a <format> image "out" with "<operands>"
    Then the info of "out" reports a virtual size of 0 bytes

    Examples:
      | format | operands                 |
      | qcow2  | bs=64k skip=20           |
      | raw    | bs=64k count=2 skip=5    |
      | raw    | bs=64k skip=16           |
