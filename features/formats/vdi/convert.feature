@format:vdi @op:convert @spec:vdi
Feature: converting VirtualBox (vdi) images to every other format and back
  Conversion copies the guest bytes between vdi and every other format the
  implementation has, in both directions; what reads as zeroes need not be written.
  The disk is 1079296 bytes, a size every format holds exactly (a vpc disk's
  geometry rounds most sizes up), so its last block or cluster is a partial one.

  Scenario Outline: a vdi image converts to <other> and back with the same guest bytes
    Given a 1079296 bytes vdi image "source"
    And 100 KiB of pattern 0xa5 written to "source" at offset 60 KiB
    And 4 KiB of pattern 0x5a written to "source" at offset 1056768 bytes
    When image "source" is converted to <other> as "other"
    And image "other" is converted to vdi as "back"
    Then images "source" and "other" have the same guest bytes
    And images "source" and "back" have the same guest bytes
    And the oracle reads the same guest bytes from "other"
    And the oracle reads the same guest bytes from "back"

    Examples:
      | other |
      | raw |
      | qed |
      | qcow |
      | parallels |
      | vpc |
      | vhdx |
