!> @file obr_croco_nml.F90
!> @brief CROCO's &namobridge switches, read from the file namelist_obridge of the run folder.
!>
!> CROCO keeps its own parameters in croco.in (being replaced upstream by a namelist), so the bridge
!> switches live in a small file of their own. Every rank reads it before MPI is up; errors come back
!> as a message naming the file, the switch and the cause, and the caller stops the job with it.
module obr_croco_nml
   implicit none
   private

   public :: nml_obr_read, nml_obr_code

   character(len=*), parameter, public :: cp_obr_file = 'namelist_obridge'   !< the switches' file
   integer, parameter, public :: jp_obr_max = 16       !< most entries of cn_obr_send

   ! Field codes (cn_obr_send names). 3-D fields have N levels, the others one.
   integer, parameter, public :: jp_temp = 1, jp_salt = 2, jp_sst = 3, jp_sss = 4, jp_ssh = 5, &
      &                          jp_u = 6, jp_v = 7, jp_mask = 8
   integer, parameter :: jp_ncode = 8
   character(len=4), parameter, public :: cp_obr_names(jp_ncode) = &
      & [character(len=4) :: 'temp', 'salt', 'sst', 'sss', 'ssh', 'u', 'v', 'mask']

   ! &namobridge (switch table: deploy/README.md); the defaults leave CROCO uncoupled.
   logical, public :: ln_obridge = .false.             !< master switch
   integer, public :: nn_obr_freq = 1                  !< send the state every N steps
   character(len=16), public :: cn_obr_send(jp_obr_max) = ''   !< fields to send
   logical, public :: ln_obr_emulator = .false.        !< receive emulated states and apply them
   character(len=16), public :: cn_obr_emu_mode = 'replace'    !< 'replace' or 'increment'
   integer, public :: nn_obr_emu_freq = 1              !< ask for an emulated state every N steps
   logical, public :: ln_obr_spinup = .false.          !< replace the initial state by a generated one
   logical, public :: ln_obr_required = .true.         !< stop when the worker is absent or dies
   real(8), public :: rn_obr_timeout = 300._8          !< seconds a receive may wait
   character(len=64), public :: cn_obr_name = 'croco'  !< component name (ensemble member: croco_3)

   namelist /namobridge/ ln_obridge, nn_obr_freq, cn_obr_send, ln_obr_emulator, cn_obr_emu_mode, &
      &                  nn_obr_emu_freq, ln_obr_spinup, ln_obr_required, rn_obr_timeout, cn_obr_name

contains

   !> Read &namobridge from namelist_obridge and check it; cd_err is '' on success.
   subroutine nml_obr_read(cd_err)
      character(len=*), intent(out) :: cd_err   !< first problem found (file, switch, cause), '' if none
      integer :: inum, ios, ik
      character(len=512) :: clmsg
      cd_err = ''
      open(newunit=inum, file=cp_obr_file, status='old', action='read', iostat=ios)
      if (ios /= 0) then
         cd_err = cp_obr_file//' not found in the run folder: CROCO was built with the cpp key OBRIDGE, '// &
            &     'which reads its &namobridge switches there (oceanbridge install croco writes one)'
         return
      end if
      clmsg = ''
      read(inum, nml=namobridge, iostat=ios, iomsg=clmsg)
      close(inum)
      if (ios < 0) then
         cd_err = cp_obr_file//': no readable &namobridge block (missing, a value of the wrong type, '// &
            &     'or no closing /): '//trim(clmsg)
      else if (ios > 0) then
         ik = index(clmsg, 'object name ')
         if (ik > 0) then
            cd_err = cp_obr_file//': &namobridge: unknown switch '''//trim(clmsg(ik+12:))//''' ('//trim(clmsg)//')'
         else
            cd_err = cp_obr_file//': &namobridge: bad entry ('//trim(clmsg)//')'
         end if
      else
         call validate(cd_err)
      end if
   end subroutine nml_obr_read

   !> Check the values; the message names the switch.
   subroutine validate(cd_err)
      character(len=*), intent(inout) :: cd_err   !< error message ('' if fine)
      integer :: jf, jg
      character(len=8) :: cln
      character(len=*), parameter :: clp = cp_obr_file//': &namobridge: '
      if (nn_obr_freq < 1)       cd_err = clp//'nn_obr_freq must be >= 1'
      if (nn_obr_emu_freq < 1)   cd_err = clp//'nn_obr_emu_freq must be >= 1'
      if (.not. rn_obr_timeout > 0._8) cd_err = clp//'rn_obr_timeout must be > 0 (seconds)'
      if (cn_obr_emu_mode /= 'replace' .and. cn_obr_emu_mode /= 'increment') &
         & cd_err = clp//'cn_obr_emu_mode = '''//trim(cn_obr_emu_mode)//''' is neither ''replace'' nor ''increment'''
      if (len_trim(cn_obr_name) == 0 .or. index(trim(adjustl(cn_obr_name)), ' ') > 0 .or. cn_obr_name(1:1) == ' ') &
         & cd_err = clp//'cn_obr_name = '''//trim(cn_obr_name)//''' must be a name without blanks'
      do jf = 1, jp_obr_max
         if (len_trim(cn_obr_send(jf)) == 0) cycle
         write(cln, '(i0)') jf
         if (nml_obr_code(cn_obr_send(jf)) == 0) cd_err = clp//'cn_obr_send('//trim(cln)//') = '''// &
            & trim(cn_obr_send(jf))//''' is not a CROCO field (temp, salt, sst, sss, ssh, u, v, mask)'
         do jg = 1, jf - 1
            if (nml_obr_code(cn_obr_send(jg)) == nml_obr_code(cn_obr_send(jf))) &
               & cd_err = clp//'cn_obr_send lists '''//trim(cn_obr_send(jf))//''' twice'
         end do
      end do
      if ((ln_obr_emulator .or. ln_obr_spinup) .and. count(len_trim(cn_obr_send) > 0) == 0) &
         & cd_err = clp//'ln_obr_emulator and ln_obr_spinup act on the fields of cn_obr_send, which is empty'
   end subroutine validate

   !> Code (jp_temp...) of a field name, 0 if unknown.
   pure integer function nml_obr_code(cd_name)
      character(len=*), intent(in) :: cd_name   !< field name as written in cn_obr_send
      integer :: jc
      nml_obr_code = 0
      do jc = 1, jp_ncode
         if (trim(adjustl(cd_name)) == trim(cp_obr_names(jc))) nml_obr_code = jc
      end do
   end function nml_obr_code

end module obr_croco_nml
