@format:qed @op:convert @spec:qed
Feature: converting qed images to vpc and vhdx and back
  Conversion copies the guest bytes between qed and the vpc and vhdx formats, in both
  directions (convert.feature covers the other formats); zeroes need not be written.
  The disk is 1079296 bytes, a size every format holds exactly (a vpc disk's
  geometry rounds most sizes up), so its last block or cluster is a partial one.

  Scenario Outline: a qed image converts to <other> and back with the same guest bytes
    Given a 1079296 bytes qed image "source"
    And 100 KiB of pattern 0xa5 written to "source" at offset 60 KiB
    And 4 KiB of pattern 0x5a written to "source" at offset 1056768 bytes
    When image "source" is converted to <other> as "other"
    And image "other" is converted to qed as "back"
    Then images "source" and "other" have the same guest bytes
    And images "source" and "back" have the same guest bytes
    And the oracle reads the same guest bytes from "other"
    And the oracle reads the same guest bytes from "back"

    Examples:
      | other |
      | vpc |
      | vhdx |
