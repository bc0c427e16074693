@format:luks @spec:luks @requires:cryptsetup
Feature: guest I/O on LUKS images, and who may open them
  Every guest sector is encrypted with the master key, its IV derived from the sector number;
  only the passphrase of an active key slot unlocks the master key. The passphrase never
  shows in what an implementation prints. The images here are made by cryptsetup (fast, and
  the format's own producer); creating them is create.feature's subject.

  Background:
    Given a 4 MiB LUKS1 image made by cryptsetup with cipher "aes-xts-plain64" and the passphrase "correct horse"

  @op:write @op:read
  Scenario: whole sectors, partial sectors and zeroed sectors read back
    When 512 bytes of pattern 0x01 is written at offset 0
    And 1 MiB of pattern 0x5a is written at offset 3 MiB
    And 777 bytes of pattern 0xa5 is written at offset 1000 bytes
    And 64 KiB of pattern 0x77 is written at offset 64 KiB
    And 4 KiB at offset 72 KiB is zeroed
    Then the 512 bytes at offset 0 reads back as pattern 0x01
    And the 1 MiB at offset 3 MiB reads back as pattern 0x5a
    And the 777 bytes at offset 1000 bytes reads back as pattern 0xa5
    And the 4 KiB at offset 72 KiB reads back as zeroes
    And the 8 KiB at offset 64 KiB reads back as pattern 0x77
    And the oracle reads the same guest bytes

  @op:read @spec:luks.key-secret
  Scenario: a wrong passphrase unlocks nothing, and the refusal does not repeat it
    When the image is read with the passphrase "tr0ub4dor"
    Then opening fails naming "password"
    And the refusal does not show the passphrase "tr0ub4dor"
    And the image info does not show the passphrase "correct horse"

  @op:read @spec:luks.key-secret
  Scenario: opening for I/O needs the key secret
    When the image is read without a key secret
    Then opening fails naming "key-secret"

  @op:read @spec:luks.key-secret
  Scenario: a key secret that names no object is refused
    When the image is read with the key secret "nosuch" that no object defines
    Then opening fails naming "nosuch"

  @op:read @spec:luks.key-secret
  Scenario: the passphrase may come from a file or in base64
    When 4 KiB of pattern 0x42 is written at offset 0
    And a secret "sec0" read from a file holding the passphrase "correct horse"
    Then the 4 KiB at offset 0 reads back as pattern 0x42
    When a secret "sec0" holding the passphrase "correct horse" in base64
    Then the 4 KiB at offset 0 reads back as pattern 0x42

  @op:convert
  Scenario: converting to raw gets the plaintext out
    When 1 MiB of pattern 0x3c is written at offset 1 MiB
    And image "image" is converted to raw as "plain"
    Then images "image" and "plain" have the same guest bytes
    And the 1 MiB of "plain" at offset 1 MiB reads back as pattern 0x3c

  @op:convert
  Scenario: converting into luks encrypts with the target's key secret
    Given a 2 MiB raw image "plain"
    And 64 KiB of pattern 0x99 written to "plain" at offset 64 KiB
    When image "plain" is converted to luks as "secret" with "key-secret=sec0,iter-time=10"
    Then the 64 KiB of "secret" at offset 64 KiB reads back as pattern 0x99
    And the oracle reads the same guest bytes from "secret"
