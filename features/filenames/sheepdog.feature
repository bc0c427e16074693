@filenames @format:sheepdog @protocol:sheepdog @qemu-removed:6.0 @spec:sheepdog
Feature: Sheepdog filenames (the driver was removed in QEMU 6.0)
  The manual's Sheepdog forms: sheepdog:///IMAGE, sheepdog:///IMAGE#TAG for a snapshot,
  sheepdog+unix:///IMAGE?socket=PATH, sheepdog://HOST:PORT/IMAGE, and the older
  sheepdog:[HOST:PORT:]IMAGE[:SNAPID|:TAG]. The reference parses them to the options QEMU 5.2
  took (localhost:7000 by default); opening says the driver is gone, as QEMU 7.2 does with
  "Unknown protocol 'sheepdog'". QEMU 7.2 refuses every one of these names.

  @spec:sheepdog.remote @spec:sheepdog.unix @spec:sheepdog.snapshot
  Scenario Outline: <name> names VDI <vdi>
    When the filename '<name>' is resolved
    Then the options are "driver=sheepdog,vdi=<vdi>,<options>"

    Examples:
      | name                                  | vdi   | options                                                                       |
      | sheepdog:///image                     | image | server.type=inet,server.host=localhost,server.port=7000,tag=,!snap-id         |
      | sheepdog:///image#mytag               | image | tag=mytag,!snap-id                                                            |
      | sheepdog://storage.example:7001/image | image | server.host=storage.example,server.port=7001                                  |
      | sheepdog+unix:///image?socket=/run/sheep.sock | image | server.type=unix,server.path=/run/sheep.sock                          |
      | sheepdog:image                        | image | server.host=localhost,server.port=7000,tag=                                   |
      | sheepdog:storage.example:7001:image:4 | image | server.host=storage.example,server.port=7001,snap-id=4                        |

  Scenario Outline: a malformed Sheepdog name is refused: <what>
    When the filename '<name>' is resolved
    Then the filename is refused with "<says>"

    Examples:
      | what                       | name                                   | says                                           |
      | no image                   | sheepdog:///                           | missing file path in URI                       |
      | a unix URI with a host     | sheepdog+unix://h/image?socket=/s      | doesn't accept a server address                |
      | a unix URI without socket  | sheepdog+unix:///image                 | requires query parameter 'socket'              |

  @spec:sheepdog
  Scenario: opening a Sheepdog image says the driver is gone
    When the image is opened by the name 'sheepdog:///image'
    Then opening is refused with "Unknown protocol 'sheepdog'"

  @spec:sheepdog.create
  Scenario: creating a Sheepdog image says the driver is gone
    When a 1 MiB raw image is created by the name 'sheepdog:///image'
    Then creation is refused with "Unknown protocol 'sheepdog'"

  @spec:sheepdog.convert
  Scenario: converting an image into Sheepdog says the driver is gone
    When a 1 MiB raw image is converted to the raw image named 'sheepdog:///image'
    Then creation is refused with "Unknown protocol 'sheepdog'"

  @spec:sheepdog.clone
  Scenario Outline: cloning <name> from a Sheepdog snapshot says the driver is gone
    When a 1 MiB qcow2 image is created by the name '<name>' over the backing file 'sheepdog:///base#tag' of format raw
    Then creation is refused with "Unknown protocol 'sheepdog'"

    Examples:
      | name              |
      | sheepdog:///image |
      | {dir}/clone.qcow2 |
