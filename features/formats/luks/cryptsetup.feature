@format:luks @spec:luks @requires:cryptsetup
Feature: LUKS images are cryptsetup's LUKS1
  The manual promises compatibility with dm-crypt and cryptsetup: a container cryptsetup
  formats opens with its passphrase, and the headers an implementation writes are ones
  cryptsetup reads and unlocks.

  @op:read @op:write
  Scenario Outline: a LUKS1 container cryptsetup made with <cipher> is read and written
    Given a 1 MiB LUKS1 image made by cryptsetup with cipher "<cipher>" and the passphrase "open sesame"
    Then the image info reports a virtual size of 1 MiB
    And the image info reports format-specific "cipher-mode" "<mode>"
    When 8 KiB of pattern 0xe1 is written at offset 4 KiB
    Then the 8 KiB at offset 4 KiB reads back as pattern 0xe1
    And the oracle reads the same guest bytes
    And cryptsetup unlocks a key slot with the passphrase "open sesame"

    Examples:
      | cipher                | mode |
      | aes-xts-plain64       | xts  |
      | aes-cbc-essiv:sha256  | cbc  |
