!> @file obr_croco_nml.F90
!> @brief CROCO's &namobridge switches, read from the file namelist_obridge of the run folder by the bridge's
!>        host layer (obr_host_nml, bridge/fortran, copied by the installer), the one reader of the group.
!>
!> CROCO keeps its own parameters in croco.in (being replaced upstream by a namelist), so the bridge
!> switches live in a small file of their own. Every rank reads it before MPI is up; errors come back
!> as a message naming the file, the switch and the cause, and the caller stops the job with it.
module obr_croco_nml
   use obr_host_nml, only: obr_nml_defaults, obr_nml_read, obr_nml_check, obr_nml_is_mask, ln_obridge, nn_obr_freq, cn_obr_send, &
      &                    ln_obr_emulator, cn_obr_emu_mode, nn_obr_emu_freq, ln_obr_spinup, ln_obr_required, &
      &                    rn_obr_timeout, cn_obr_name
   implicit none
   private

   public :: nml_obr_read, nml_obr_code
   ! &namobridge (switch table: deploy/README.md); the defaults leave CROCO uncoupled.
   public :: ln_obridge, nn_obr_freq, cn_obr_send, ln_obr_emulator, cn_obr_emu_mode, nn_obr_emu_freq, ln_obr_spinup, &
      &      ln_obr_required, rn_obr_timeout, cn_obr_name

   character(len=*), parameter, public :: cp_obr_file = 'namelist_obridge'   !< the switches' file
   integer, parameter, public :: jp_obr_max = 16       !< most entries of cn_obr_send

   ! Field codes (cn_obr_send names). 3-D fields have N levels, the others one.
   integer, parameter, public :: jp_temp = 1, jp_salt = 2, jp_sst = 3, jp_sss = 4, jp_ssh = 5, &
      &                          jp_u = 6, jp_v = 7, jp_mask = 8
   integer, parameter :: jp_ncode = 8
   character(len=4), parameter, public :: cp_obr_names(jp_ncode) = &
      & [character(len=4) :: 'temp', 'salt', 'sst', 'sss', 'ssh', 'u', 'v', 'mask']

   character(len=1024) :: cerr = ''                    ! the error found by obr_nml_check

contains

   !> Read &namobridge from namelist_obridge and check it; cd_err is '' on success.
   subroutine nml_obr_read(cd_err)
      character(len=*), intent(out) :: cd_err   !< first problem found (file, switch, cause), '' if none
      logical :: llthere
      cd_err = ''
      inquire(file=cp_obr_file, exist=llthere)
      if (.not. llthere) then
         cd_err = cp_obr_file//' not found in the run folder: CROCO was built with the cpp key OBRIDGE, '// &
            &     'which reads its &namobridge switches there (oceanbridge install croco writes one)'
         return
      end if
      call obr_nml_defaults('croco', jp_obr_max)
      call obr_nml_read(cp_obr_file, cd_err, ld_required = .true.)
      if (cd_err /= '') return
      cerr = ''
      call obr_nml_check(field_code, 'a CROCO field (temp, salt, sst, sss, ssh, u, v, mask)', keep_error)
      cd_err = cerr
   end subroutine nml_obr_read

   !> Keep an invalid switch as the error (the last one found wins).
   subroutine keep_error(cd_msg)
      character(len=*), intent(in) :: cd_msg    !< the problem, naming the switch
      cerr = cp_obr_file//': &namobridge: '//cd_msg
   end subroutine keep_error

   !> The host layer's code of a state field name: its code, 0 for 'mask' and unknown names.
   integer function field_code(cd_name)
      character(len=*), intent(in) :: cd_name   !< an entry of cn_obr_send
      field_code = nml_obr_code(cd_name)
      if (field_code == jp_mask) field_code = 0
   end function field_code

   !> Code (jp_temp...) of a field name, 0 if unknown.
   pure integer function nml_obr_code(cd_name)
      character(len=*), intent(in) :: cd_name   !< field name as written in cn_obr_send
      integer :: jc
      nml_obr_code = 0
      do jc = 1, jp_ncode
         if (trim(adjustl(cd_name)) == trim(cp_obr_names(jc))) nml_obr_code = jc
      end do
      if (obr_nml_is_mask(cd_name)) nml_obr_code = jp_mask
   end function nml_obr_code

end module obr_croco_nml
