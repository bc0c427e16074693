@format:qcow2 @op:create
Feature: qcow2 encryption
  encrypt.format=luks encrypts the payload (not the header) with LUKS, unlocked by the
  passphrase in the secret named by encrypt.key-secret; its parameters are tuned by the
  other encrypt.* options. encrypt.format=aes is the old 128-bit AES-CBC scheme, kept
  only for data liberation; encryption=on is its deprecated spelling. These scenarios run
  against an implementation that declares the qcow2+luks / qcow2+aes capabilities.
  encrypt.iter-time is kept tiny: the scenarios are about the options, not the strength.

  Background:
    Given a secret "sec0" holding the passphrase "correct horse"

  @spec:qcow2.encrypt.format @spec:qcow2.encrypt.key-secret @spec:qcow2.encrypt.cipher-alg @spec:qcow2.encrypt.cipher-mode @spec:qcow2.encrypt.ivgen-alg @spec:qcow2.encrypt.ivgen-hash-alg @spec:qcow2.encrypt.hash-alg @spec:qcow2.encrypt.iter-time
  Scenario: a LUKS-encrypted qcow2 image, with the LUKS defaults
    When a 4 MiB qcow2 image is created encrypted with "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"
    Then creation succeeds
    And the image info reports "encrypted" true
    And the image info reports encryption "format" "luks"
    And the image info reports encryption "cipher-alg" "aes-256"
    And the image info reports encryption "cipher-mode" "xts"
    And the image info reports encryption "ivgen-alg" "plain64"
    And the image info reports encryption "hash-alg" "sha256"
    When 64 KiB of pattern 0x5a is written at offset 1 MiB
    Then the 64 KiB at offset 1 MiB reads back as pattern 0x5a
    And the oracle reads the same guest bytes

  @spec:qcow2.encrypt.cipher-alg
  Scenario: encrypt.cipher-alg=aes-128 is used
    When a 4 MiB qcow2 image is created encrypted with "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10,encrypt.cipher-alg=aes-128"
    Then creation succeeds
    And the image info reports encryption "cipher-alg" "aes-128"

  @spec:qcow2.encrypt.key-secret
  Scenario: LUKS encryption needs a key secret
    When a 4 MiB qcow2 image is created encrypted with "encrypt.format=luks"
    Then creation fails naming "encrypt.key-secret"
    And no image file is left behind

  @spec:qcow2.encrypt.format
  Scenario: the legacy AES format
    When a 4 MiB qcow2 image is created encrypted with "encrypt.format=aes,encrypt.key-secret=sec0"
    Then creation succeeds
    And the image info reports "encrypted" true
    And the image info reports encryption "format" "aes"
    When 64 KiB of pattern 0x5a is written at offset 1 MiB
    Then the 64 KiB at offset 1 MiB reads back as pattern 0x5a
    And the oracle reads the same guest bytes

  @spec:qcow2.encryption
  Scenario: encryption=on is the deprecated spelling of encrypt.format=aes
    When a 4 MiB qcow2 image is created encrypted with "encryption=on,encrypt.key-secret=sec0"
    Then creation succeeds
    And the image info reports encryption "format" "aes"
