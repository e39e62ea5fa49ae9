!> @file gyre_rst.F90
!> @brief Restart files: <cn_exp>_<kt, 8 digits>_restart.nc holding the full state after step kt.
!>
!> Rank 0 writes <name>.nc.tmp and renames it to <name>.nc once closed, so a restart file is either complete
!> or absent (a crash while writing never leaves a truncated restart behind). The time scheme (Runge-Kutta 3)
!> keeps no other memory, so reading a restart gives a bit-identical continuation, with any decomposition.
module gyre_rst
   use netcdf
   use gyre_par
   use gyre_mpp, only: ni, nj, nimpp, njmpp, lwp, mpp_gather, ctl_stop, lbc_lnk
   use gyre_io,  only: nccheck, nc_def_xy, nc_put_params, global_atts, cp_std, cp_units, cp_tunits
   use gyre_dom, only: xt_glo, yt_glo
   implicit none
   private

   public :: rst_write, rst_read, rst_due

   character(len=lc), public :: cn_rst_last = ''   !< last restart file written (or read) by this run

contains

   !> .true. when a restart is due at step kt (every nn_stock steps, and at nitend with ln_rst_end).
   logical function rst_due(kt)
      integer, intent(in) :: kt                 !< time step index
      rst_due = .false.
      if (nn_stock > 0) rst_due = mod(kt, nn_stock) == 0
      if (ln_rst_end .and. kt == nitend) rst_due = .true.
   end function rst_due

   !> Write the restart of step kt (collective; rank 0 writes).
   subroutine rst_write(kt, px)
      integer, intent(in) :: kt                 !< time step index of the state
      real(wp), intent(in) :: px(1-nn_hls:, 1-nn_hls:, :)   !< state
      real(wp), allocatable :: zglo(:,:)
      integer :: incid, idx, idy, ivx, ivy, ivf(jpfld), ivkt, ivt, jf, ierr
      character(len=lc) :: clf, cltmp
      write(clf, '(a,"_",i8.8,"_restart.nc")') trim(cn_exp), kt
      cltmp = trim(clf)//'.tmp'
      allocate(zglo(merge(nn_nx, 1, lwp), merge(nn_ny, 1, lwp)))
      if (lwp) then
         call nccheck(nf90_create(trim(cltmp), ior(NF90_CLOBBER, NF90_64BIT_OFFSET), incid), 'create '//trim(cltmp))
         call nc_def_xy(incid, idx, idy, ivx, ivy)
         do jf = 1, jpfld
            call nccheck(nf90_def_var(incid, trim(cp_fld(jf)), NF90_DOUBLE, [idx, idy], ivf(jf)), 'def_var')
            call nccheck(nf90_put_att(incid, ivf(jf), 'standard_name', trim(cp_std(jf))), 'att')
            call nccheck(nf90_put_att(incid, ivf(jf), 'units', trim(cp_units(jf))), 'att')
         end do
         call nccheck(nf90_def_var(incid, 'kt', NF90_INT, ivkt), 'def_var kt')
         call nccheck(nf90_put_att(incid, ivkt, 'long_name', 'last time step done; the next run starts at kt+1'), 'att')
         call nccheck(nf90_def_var(incid, 'time', NF90_DOUBLE, ivt), 'def_var time')
         call nccheck(nf90_put_att(incid, ivt, 'units', cp_tunits), 'att')
         call nc_put_params(incid, .true.)
         call global_atts(incid, 'oceanbridge gyre: restart')
         call nccheck(nf90_enddef(incid), 'enddef '//trim(cltmp))
         call nccheck(nf90_put_var(incid, ivx, xt_glo), 'put x')
         call nccheck(nf90_put_var(incid, ivy, yt_glo), 'put y')
         call nccheck(nf90_put_var(incid, ivkt, kt), 'put kt')
         call nccheck(nf90_put_var(incid, ivt, kt * rn_dt), 'put time')
         call nc_put_params(incid, .false.)
      end if
      do jf = 1, jpfld
         call mpp_gather(px(:,:,jf), zglo)
         if (lwp) call nccheck(nf90_put_var(incid, ivf(jf), zglo), 'put '//cp_fld(jf))
      end do
      if (lwp) then
         call nccheck(nf90_close(incid), 'close '//trim(cltmp))
         call rename(trim(cltmp), trim(clf), ierr)
         if (ierr /= 0) call ctl_stop('rst_write: cannot rename '//trim(cltmp)//' to '//trim(clf), ld_local=.true.)
         write(*, '(a,i0,a)') ' rst_write: step ', kt, ' -> '//trim(clf)
      end if
      cn_rst_last = clf
   end subroutine rst_write

   !> Read the restart cn_ocerst_in (every rank reads its own tile) and set nit000 = kt + 1.
   subroutine rst_read(px)
      real(wp), intent(inout) :: px(1-nn_hls:, 1-nn_hls:, :)   !< state, interior and halos set
      integer :: incid, iv, ierr, jf, ikt, idim, ilen
      character(len=lc) :: clf
      character(len=32) :: cldim
      clf = cn_ocerst_in
      if (index(clf, '.nc', back=.true.) /= max(len_trim(clf) - 2, 1)) clf = trim(clf)//'.nc'
      ierr = nf90_open(trim(clf), NF90_NOWRITE, incid)
      if (ierr /= NF90_NOERR) call ctl_stop('&namrun: cannot open the restart cn_ocerst_in = '''//trim(clf)//''': ' &
         &                                  //trim(nf90_strerror(ierr)))
      do idim = 1, 2
         cldim = merge('x', 'y', idim == 1)
         ierr = nf90_inq_dimid(incid, trim(cldim), iv)
         if (ierr == NF90_NOERR) ierr = nf90_inquire_dimension(incid, iv, len=ilen)
         if (ierr /= NF90_NOERR .or. ilen /= merge(nn_nx, nn_ny, idim == 1)) &
            & call ctl_stop('restart '//trim(clf)//': dimension '//trim(cldim)//' does not match &namdom')
      end do
      call nccheck(nf90_inq_varid(incid, 'kt', iv), 'restart kt')
      call nccheck(nf90_get_var(incid, iv, ikt), 'restart kt')
      do jf = 1, jpfld
         call nccheck(nf90_inq_varid(incid, trim(cp_fld(jf)), iv), 'restart '//cp_fld(jf))
         call nccheck(nf90_get_var(incid, iv, px(1:ni, 1:nj, jf), start=[nimpp+1, njmpp+1], count=[ni, nj]), &
            &         'restart '//cp_fld(jf))
      end do
      call nccheck(nf90_close(incid), 'close '//trim(clf))
      call lbc_lnk(px)
      nit000 = ikt + 1
      cn_rst_last = clf
      if (lwp) write(*, '(a,i0,a,i0)') ' rst_read: '//trim(clf)//' at step ', ikt, '; this run starts at step ', nit000
   end subroutine rst_read

end module gyre_rst
