@filenames @format:vvfat @protocol:vvfat @spec:vvfat
Feature: Virtual FAT filenames
  fat:[floppy:][rw:][12:|16:|32:]DIRECTORY presents a host directory as a FAT disk; the words may
  come in any order and an unknown one is ignored, as QEMU's vvfat looks for each anywhere in the
  name. fat-type 0 means QEMU picks (FAT12 for a floppy, FAT16 otherwise). qemu-img shows these
  nodes as json:{...}, so what it made of the name can be read on its image: line.

  @spec:vvfat.floppy @spec:vvfat.rw
  Scenario Outline: <name> names <options>
    When the filename '<name>' is resolved
    Then the options are "driver=vvfat,dir={dir},<options>"

    Examples:
      | name                  | options                                |
      | fat:{dir}             | fat-type=0,floppy=false,rw=false,!label |
      | fat:floppy:{dir}      | fat-type=0,floppy=true,rw=false        |
      | fat:16:{dir}          | fat-type=16,floppy=false               |
      | fat:floppy:12:{dir}   | fat-type=12,floppy=true                |
      | fat:24:{dir}          | fat-type=0                             |
      | fat:rw:{dir}          | rw=true,floppy=false                   |
      | fat:rw:floppy:16:{dir} | rw=true,floppy=true,fat-type=16       |

  Scenario: the label is an option of the node only
    When the option list 'driver=vvfat,dir={dir},label=QBC' is resolved
    Then the options are "driver=vvfat,dir={dir},label=QBC"

  @spec:filename.display @format:filename
  Scenario Outline: a virtual FAT disk opened as <name> is shown as json:
    When the image is opened by the name '<name>'
    Then the image line shows '<shown>'

    Examples:
      | name             | shown                                                                                                     |
      | fat:{dir}        | json:{"driver": "raw", "file": {"fat-type": 0, "dir": "{dir}", "driver": "vvfat", "floppy": false, "rw": false}} |
      | fat:floppy:12:{dir} | json:{"driver": "raw", "file": {"fat-type": 12, "dir": "{dir}", "driver": "vvfat", "floppy": true, "rw": false}} |

  @refusal
  Scenario Outline: bad virtual FAT options are refused: <what>
    When the option list '<options>' is resolved
    Then the filename is refused with "<says>"

    Examples:
      | what                 | options                                 | says                                        |
      | no directory         | driver=vvfat                            | vvfat block driver requires a 'dir' option  |
      | a FAT type of 13     | driver=vvfat,dir={dir},fat-type=13      | Valid FAT types are only 12, 16 and 32      |
      | a 12-byte label      | driver=vvfat,dir={dir},label=ABCDEFGHIJKL | vvfat label cannot be longer than 11 bytes |
