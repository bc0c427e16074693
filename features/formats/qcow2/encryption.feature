@format:qcow2 @op:create
Feature: qcow2 encryption
  encrypt.format=luks encrypts the payload (not the header) with LUKS, unlocked by the
  passphrase in the secret named by encrypt.key-secret; its parameters are tuned by the
  other encrypt.* options. encrypt.format=aes is the old 128-bit AES-CBC scheme, kept
  only for data liberation; encryption=on is its deprecated spelling.
  Secrets are not part of the adapter contract yet: these scenarios run only against
  an implementation that declares the qcow2+luks / qcow2+aes capabilities.

  @spec:qcow2.encrypt.format @spec:qcow2.encrypt.key-secret
  Scenario: a LUKS-encrypted qcow2 image
    When a 64 MiB qcow2 image is created encrypted with "encrypt.format=luks,encrypt.key-secret=sec0"
    Then creation succeeds
    And the image info reports "encrypted" true
    And the image info reports encryption "format" "luks"

  @spec:qcow2.encrypt.cipher-alg @spec:qcow2.encrypt.cipher-mode @spec:qcow2.encrypt.ivgen-alg @spec:qcow2.encrypt.ivgen-hash-alg @spec:qcow2.encrypt.hash-alg
  Scenario Outline: LUKS encryption defaults to <field> <value>
    When a 64 MiB qcow2 image is created encrypted with "encrypt.format=luks,encrypt.key-secret=sec0"
    Then creation succeeds
    And the image info reports encryption "<field>" "<value>"

    Examples:
      | field          | value   |
      | cipher-alg     | aes-256 |
      | cipher-mode    | xts     |
      | ivgen-alg      | plain64 |
      | ivgen-hash-alg | sha256  |
      | hash-alg       | sha256  |

  @spec:qcow2.encrypt.cipher-alg
  Scenario Outline: encrypt.cipher-alg=<alg> is used
    When a 64 MiB qcow2 image is created encrypted with "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.cipher-alg=<alg>"
    Then creation succeeds
    And the image info reports encryption "cipher-alg" "<alg>"

    Examples:
      | alg     |
      | aes-128 |
      | aes-256 |

  @spec:qcow2.encrypt.iter-time
  Scenario: encrypt.iter-time bounds the PBKDF time
    When a 64 MiB qcow2 image is created encrypted with "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"
    Then creation succeeds
    And the image info reports encryption "format" "luks"

  @spec:qcow2.encrypt.key-secret
  Scenario: LUKS encryption needs a key secret
    When a 64 MiB qcow2 image is created encrypted with "encrypt.format=luks"
    Then creation fails naming "encrypt.key-secret"
    And no image file is left behind

  @spec:qcow2.encrypt.format
  Scenario: the legacy AES format
    When a 64 MiB qcow2 image is created encrypted with "encrypt.format=aes,encrypt.key-secret=sec0"
    Then creation succeeds
    And the image info reports "encrypted" true
    And the image info reports encryption "format" "aes"

  @spec:qcow2.encryption
  Scenario: encryption=on is the deprecated spelling of encrypt.format=aes
    When a 64 MiB qcow2 image is created encrypted with "encryption=on,encrypt.key-secret=sec0"
    Then creation succeeds
    And the image info reports encryption "format" "aes"
