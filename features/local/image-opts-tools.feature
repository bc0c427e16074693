@filenames @format:filename @protocol:file @spec:filename.image-opts
Feature: --image-opts in qemu-img convert and compare
  qemu-img convert and compare take --image-opts like info does: the file names are dotted option
  lists. convert's --target-image-opts names an existing target that way, and needs -n (qemu-img
  cannot create an image from an option list). qemu-img create has no --image-opts.

  @op:convert
  Scenario: convert reads a source named by options
    Given a 1 MiB qcow2 image "src"
    And 64 KiB of pattern 0x33 written to "src" at offset 128 KiB
    When image "src" named by options is converted to raw as "copy"
    Then the 64 KiB of "copy" at offset 128 KiB reads back as pattern 0x33
    And images "src" and "copy" have the same guest bytes

  @op:convert
  Scenario: convert -n writes into an existing target named by options
    Given a 1 MiB qcow2 image "src"
    And 64 KiB of pattern 0x44 written to "src" at offset 512 KiB
    And a 1 MiB raw image "dst"
    When image "src" is converted into the existing image "dst" named by options
    Then the 64 KiB of "dst" at offset 512 KiB reads back as pattern 0x44

  @op:convert
  Scenario: a target named by options must exist (-n)
    Given a 1 MiB qcow2 image "src"
    When a conversion of image "src" into a new image named by options is attempted
    Then the conversion is refused naming "-n"

  @op:compare
  Scenario Outline: compare with both images named by options finds them <verdict>
    Given a 1 MiB qcow2 image "a"
    And a 1 MiB raw image "b"
    And 4 KiB of pattern 0x55 written to "a" at offset 0
    And 4 KiB of pattern <pattern> written to "b" at offset 0
    When images "a" and "b" named by options are compared
    Then they are reported <verdict>

    Examples:
      | pattern | verdict   |
      | 0x55    | identical |
      | 0x56    | different |
