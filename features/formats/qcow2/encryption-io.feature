@format:qcow2 @op:write
Feature: writing encrypted qcow2 and qcow images
  An encrypted image stores every guest sector encrypted: with LUKS (qcow2 encrypt.format=luks)
  by the master key its key slots guard, with the IV taken from the sector's host offset; with
  the legacy AES scheme (qcow2 and qcow encrypt.format=aes) by the passphrase itself, the IV the
  guest sector number. A write smaller than a sector or a cluster decrypts what it keeps, merges
  and re-encrypts; what one implementation writes the other reads. A compressed cluster would
  hold guest data in the clear, so compressed conversion into an encrypted image is refused. A
  write with a wrong or missing key, or into an image whose LUKS header cannot be found, is
  refused before anything is written. encrypt.iter-time is kept tiny.

  Background:
    Given a secret "sec0" holding the passphrase "correct horse"

  @spec:qcow2.encrypt.format @spec:qcow.encrypt.format @op:read
  Scenario Outline: partial sectors, partial clusters and zeroes read back from <what>
    Given a 2 MiB <format> image created with "<options>"
    When 777 bytes of pattern 0xa5 is written at offset 1000 bytes
    And 64 KiB of pattern 0x77 is written at offset 96 KiB
    And 4 KiB at offset 100 KiB is zeroed
    And 64 KiB at offset 1 MiB is zeroed
    Then the 777 bytes at offset 1000 bytes reads back as pattern 0xa5
    And the 1000 bytes at offset 0 reads back as zeroes
    And the 4 KiB at offset 96 KiB reads back as pattern 0x77
    And the 4 KiB at offset 100 KiB reads back as zeroes
    And the 56 KiB at offset 104 KiB reads back as pattern 0x77
    And the 64 KiB at offset 1 MiB reads back as zeroes
    And the oracle reads the same guest bytes

    Examples:
      | what                | format | options                                                        |
      | qcow2 with LUKS     | qcow2  | encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 |
      | qcow2 with AES      | qcow2  | encrypt.format=aes,encrypt.key-secret=sec0                     |
      | qcow with AES       | qcow   | encrypt.format=aes,encrypt.key-secret=sec0                     |

  @spec:qcow2.encrypt.format @op:convert @op:check
  Scenario: converting into LUKS-encrypted qcow2 and back out
    Given a 2 MiB raw image "plain"
    And 64 KiB of pattern 0x99 written to "plain" at offset 64 KiB
    When image "plain" is converted to qcow2 as "secret" with "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"
    Then the 64 KiB of "secret" at offset 64 KiB reads back as pattern 0x99
    And the oracle reads the same guest bytes from "secret"
    When the image is checked
    Then the check reports no corruption
    When image "secret" is converted to raw as "out"
    Then images "plain" and "out" have the same guest bytes

  @spec:qcow2.encrypt.format @op:convert
  Scenario: a compressed conversion into an encrypted image is refused
    Given a 2 MiB raw image "plain"
    When a compressed conversion of the image to qcow2 with "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10" is attempted
    Then the conversion fails naming "encryption"
    And no image file is left behind

  @spec:qcow2.encrypt.key-secret
  Scenario: a write with the wrong passphrase unlocks nothing and changes nothing
    Given a 2 MiB qcow2 image created with "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"
    When a write of 4 KiB of pattern 0x11 at offset 0 is attempted with the passphrase "tr0ub4dor"
    Then opening fails naming "password"
    And the refusal does not show the passphrase "tr0ub4dor"
    And the image file is unchanged

  @spec:qcow2.encrypt.key-secret
  Scenario Outline: a write without a key secret is refused (<what>)
    Given a 2 MiB <format> image created with "<options>"
    When a write of 4 KiB of pattern 0x11 at offset 0 is attempted without a key secret
    Then opening fails naming "key-secret"
    And the image file is unchanged

    Examples:
      | what       | format | options                                                        |
      | qcow2 LUKS | qcow2  | encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10 |
      | qcow AES   | qcow   | encrypt.format=aes,encrypt.key-secret=sec0                     |

  @spec:qcow2.encrypt.format
  Scenario: a truncated crypto header extension is refused
    Given a 2 MiB qcow2 image created with "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"
    And the crypto header extension of the image is cut to 8 bytes
    When a write of 4 KiB of pattern 0x11 at offset 0 is attempted with the image's key
    Then opening fails naming "header extension"
    And the image file is unchanged

  @spec:qcow2.encrypt.format
  Scenario: a crypto header extension pointing past the end of the file is refused
    Given a 2 MiB qcow2 image created with "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"
    And the crypto header extension of the image points past the end of the file
    When a write of 4 KiB of pattern 0x11 at offset 0 is attempted with the image's key
    Then opening fails naming "LUKS"
    And the image file is unchanged
