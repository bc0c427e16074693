@format:qcow @op:create
Feature: qcow AES encryption needs a usable secret
  The manual keeps qcow's AES-CBC encryption (encryption=on, or encrypt.format=aes with
  encrypt.key-secret naming a secret object) only for data liberation. Creating such an image
  needs both the format and a secret; every way of asking for it without a usable secret is
  refused with an error naming the encryption option, and no other format is accepted.
  Writing and reading AES-encrypted qcow images is qcow2/encryption-io.feature's subject.

  @spec:qcow.encryption
  Scenario: encryption=on without a secret is refused
    When a 64 MiB qcow image is created with "encryption=on"
    Then creation fails naming "encrypt"

  @spec:qcow.encrypt.format
  Scenario Outline: encrypt.format=<value> without a secret is refused
    When a 64 MiB qcow image is created with "encrypt.format=<value>"
    Then creation fails naming "encrypt"

    Examples:
      | value |
      | aes   |
      | luks  |

  @spec:qcow.encrypt.key-secret
  Scenario: encrypt.key-secret alone does not encrypt and is refused
    When a 64 MiB qcow image is created with "encrypt.key-secret=sec0"
    Then creation fails naming "encrypt"
